# Allocation-heavy Perl with deterministic output, run by preload.sh with
# and without hakmem preloaded: both runs must print the same lines.
# (Perl randomises hash order: everything printed goes through sort.)
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

# A fixed LCG, so the data does not depend on Perl's rand.
my $state = 12345;
# The low bits of a power-of-two LCG cycle quickly: use the high ones.
sub rnd { $state = ($state * 1103515245 + 12345) % 2147483648; return $state >> 12; }

my @syl = qw(ka lo mi ne su ta ri po an el or qu);
sub word { my $n = 1 + rnd() % 4; return join '', map { $syl[rnd() % @syl] } 1 .. $n; }

# Word counts in a hash.
my %count;
my @words = map { word() } 1 .. 150_000;
$count{$_}++ for @words;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 19];
print "distinct: ", scalar(keys %count), "\n";
print "top: ", join(',', map { "$_=$count{$_}" } @top), "\n";

# Arrays of arrays, sorted several ways.
my @rec = map { [word(), rnd() % 1000, $_] } 1 .. 60_000;
my @by_name = sort { $a->[0] cmp $b->[0] || $a->[1] <=> $b->[1] || $a->[2] <=> $b->[2] } @rec;
my @by_num = sort { $b->[1] <=> $a->[1] || $a->[2] <=> $b->[2] } @rec;
print "by name: ", md5_hex(join ';', map { "@$_" } @by_name), "\n";
print "by num: ", md5_hex(join ';', map { "@$_" } @by_num), "\n";

# Hash of arrays and hash of hashes, grown and pruned.
my (%hoa, %hoh);
for my $i (1 .. 100_000) {
    my $k = $words[$i % @words];
    push @{ $hoa{$k} }, $i;
    $hoh{ substr($k, 0, 2) }{$k} += $i;
}
delete $hoa{$_} for grep { @{ $hoa{$_} } < 3 } keys %hoa;
print "hoa: ", scalar(keys %hoa), " ", md5_hex(join ',', map { "$_:" . scalar(@{ $hoa{$_} }) } sort keys %hoa), "\n";
print "hoh: ", md5_hex(join ',', map { my $o = $_; map { "$o/$_=$hoh{$o}{$_}" } sort keys %{ $hoh{$o} } } sort keys %hoh), "\n";

# Regular expressions: matching, captures, substitution.
my $text = join ' ', @words[0 .. 50_000];
my @caps = $text =~ /\b(ka\w*?)(lo|mi)\b/g;
(my $sub = $text) =~ s/(\w)(\w*)/\U$1\E$2/g;
my $n = () = $text =~ /qu/g;
print "regex: ", scalar(@caps), " $n ", md5_hex($sub), "\n";

# String building: concatenation, sprintf, reverse, split and join.
my $s = '';
$s .= sprintf("%06d:%s|", $_, scalar reverse $words[$_]) for 0 .. 40_000;
my @parts = split /\|/, $s;
print "string: ", length($s), " ", scalar(@parts), " ", md5_hex(join "\n", reverse @parts), "\n";

# Recursion and closures.
sub fib { my $n = shift; return $n < 2 ? $n : fib($n - 1) + fib($n - 2); }
my @adders = map { my $k = $_; sub { $_[0] + $k } } 1 .. 1000;
my $acc = 0;
$acc = $_->($acc) for @adders;
print "fib(22): ", fib(22), " closures: $acc\n";
print "done\n";
