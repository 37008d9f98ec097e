/* A program that does not use hakmem loads a plugin that depends on it
 * (tests/dlclose_plugin.c), and unloads it (helper 50):
 * 1. a thread that took a hakmem heap through the plugin exits after the
 *    plugin's dlclose: libhakmem, unloaded, had left its thread-exit
 *    destructor registered, and the thread crashed (SIGSEGV) at its exit;
 * 2. 2,000 load/unload cycles: each reload took another pthread key and
 *    page, and the program's own pthread_key_create failed after ~1,000.
 * libhakmem is linked -z nodelete: it stays.  usage: dlclose PLUGIN.so */
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>

static void *(*plugin_alloc)(size_t);
static void (*plugin_free)(void *);
static sem_t allocated, unloaded;

static void *user(void *arg)
{
    (void)arg;
    plugin_free(plugin_alloc(100));  /* this thread now has a hakmem heap */
    sem_post(&allocated);
    sem_wait(&unloaded);
    return NULL;  /* TSD destructors run here */
}

static void *load(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        printf("dlopen %s: %s\n", path, dlerror());
        exit(99);
    }
    plugin_alloc = (void *(*)(size_t))dlsym(h, "plugin_alloc");
    plugin_free = (void (*)(void *))dlsym(h, "plugin_free");
    return h;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 99;
    sem_init(&allocated, 0, 0);
    sem_init(&unloaded, 0, 0);
    void *h = load(argv[1]);
    pthread_t t;
    pthread_create(&t, NULL, user, NULL);
    sem_wait(&allocated);
    dlclose(h);
    sem_post(&unloaded);
    pthread_join(t, NULL);
    printf("a thread with a heap exited after the plugin's dlclose\n");
    for (int i = 0; i < 2000; i++) {
        h = load(argv[1]);
        plugin_free(plugin_alloc(64));
        dlclose(h);
    }
    pthread_key_t key;
    if (pthread_key_create(&key, NULL) != 0) {
        printf("FAIL: pthread_key_create after 2000 load/unload cycles: keys exhausted\n");
        return 1;
    }
    printf("2000 load/unload cycles; the program's pthread_key_create succeeds\n");
    return 0;
}
