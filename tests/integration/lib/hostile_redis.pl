#!/usr/bin/perl
# hostile_redis.pl PORT MODE -- a hostile fake Redis on 127.0.0.1:PORT, for the fault tests
#
# Answers AUTH/SELECT/PING with +OK and SCRIPT LOAD with a SHA1 as Redis would; every EVALSHA
# gets MODE's answer:
#   silence     nothing (the connection stays open)
#   drip        a reply that never ends, one byte every 30 ms
#   huge-array  "*2147483647\r\n", then nothing
#   huge-bulk   "$2147483647\r\n", then bytes as fast as they go
#   garbage     "?garbage\r\n"
# One child per connection; a child dies with its client (SIGPIPE) or after 60 s at most, and
# SIGTERM to this process kills every child first, so stopping it by PID leaves nothing.
use strict;
use warnings;
use IO::Socket::INET;
use POSIX ();
use Digest::SHA qw(sha1_hex);

my ($port, $mode) = @ARGV;
die "usage: $0 PORT MODE\n" unless defined $mode;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 64,
                              ReuseAddr => 1) or die "listen 127.0.0.1:$port: $!\n";
my %kids;
$SIG{TERM} = sub { kill 'KILL', keys %kids; exit 0 };
$SIG{CHLD} = sub { while ((my $p = waitpid(-1, POSIX::WNOHANG())) > 0) { delete $kids{$p} } };

# One RESP command: its name, upper-cased, and its last argument; undef at EOF or on anything
# else.
sub command {
    my $c = shift;
    my $line = <$c>;
    return undef unless defined $line && $line =~ /^\*(\d+)/;
    my ($n, $name, $last) = ($1, undef, undef);
    for (1 .. $n) {
        my $h = <$c>;
        return undef unless defined $h && $h =~ /^\$(\d+)/;
        my ($len, $buf) = ($1, '');
        while (length($buf) < $len + 2) {
            my $r = read($c, $buf, $len + 2 - length($buf), length($buf));
            return undef unless $r;
        }
        $name //= uc substr($buf, 0, $len);
        $last = substr($buf, 0, $len);
    }
    return ($name, $last);
}

sub serve {
    my $c = shift;
    $c->autoflush(1);
    while (1) {
        my ($name, $last) = command($c);
        last unless defined $name;
        if ($name ne 'EVALSHA') { # SCRIPT LOAD: the script's SHA1, which the filter checks
            print $c ($name eq 'SCRIPT' ? "\$40\r\n" . sha1_hex($last) . "\r\n" : "+OK\r\n");
        } elsif ($mode eq 'drip') {
            my $r = "*5\r\n:1\r\n:0\r\n:1\r\n:0\r\n:1";
            for (my $i = 0; ; $i++) {
                print $c ($i < length $r ? substr($r, $i, 1) : '7');
                select(undef, undef, undef, 0.03);
            }
        } elsif ($mode eq 'huge-array') {
            print $c "*2147483647\r\n";
        } elsif ($mode eq 'huge-bulk') {
            print $c "\$2147483647\r\n";
            my $x = 'x' x 65536;
            print $c $x while 1;
        } elsif ($mode eq 'garbage') {
            print $c "?garbage\r\n";
        } # silence: nothing
    }
}

while (1) {
    my $c = $l->accept or next; # EINTR from SIGCHLD: accept again
    my $pid = fork;
    if (!defined $pid) { close $c; next }
    if ($pid == 0) {
        $SIG{TERM} = 'DEFAULT';
        $SIG{CHLD} = 'DEFAULT';
        alarm 60;
        close $l;
        serve($c);
        exit 0;
    }
    $kids{$pid} = 1;
    close $c;
}
