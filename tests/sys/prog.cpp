// Compiled by clang++ under preload.sh with and without hakmem preloaded:
// the two objects and the two programs' outputs must be identical.  clang
// itself assumes operator new returns 16-byte aligned memory (it stores 16
// bytes with movaps into new objects of 40 bytes): with 8-byte aligned
// blocks it crashed while setting up its C++ parser.
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct shape {
    virtual ~shape() = default;
    virtual double area() const = 0;
};

struct rect : shape {
    double w, h;
    rect(double w_, double h_) : w(w_), h(h_) {}
    double area() const override { return w * h; }
};

struct tri : shape {
    double b, h;
    tri(double b_, double h_) : b(b_), h(h_) {}
    double area() const override { return b * h / 2; }
};

int main()
{
    std::map<std::string, std::vector<std::unique_ptr<shape>>> groups;
    for (int i = 0; i < 20000; i++) {
        std::string key = "g" + std::to_string(i % 97);
        if (i % 3)
            groups[key].push_back(std::make_unique<rect>(i % 13, i % 7));
        else
            groups[key].push_back(std::make_unique<tri>(i % 11, i % 5));
    }
    double total = 0;
    std::uint64_t count = 0;
    for (const auto &g : groups)
        for (const auto &s : g.second) {
            total += s->area();
            count++;
        }
    std::cout << groups.size() << " groups, " << count << " shapes, area " << total << "\n";
    return 0;
}
