/*
 * tm-wlat: the latency of synchronous 4 KiB writes, measured inside a guest.
 *
 * Built statically into the tiny test guest by deploy/guest/build-tiny-guest.sh; the bench
 * scenario `guest-os` (demo/.../GuestOsLatency.java) runs it while Tidemark backs the guest's disk
 * up. It models a database committing at a steady rate: every write is opened with
 * O_DIRECT|O_DSYNC, so each pwrite() returns only once the data is on the virtual disk and the disk
 * has flushed (virtio-blk: a write, then a flush), which is what a commit waits for.
 *
 *   tm-wlat [-s SEED] [-p PACE_US] [-n MAX_WRITES] [-x STOP_FILE] [-r READY_FILE]
 *           DEVICE SIZE_BYTES OUT_FILE
 *
 * Writes 4 KiB blocks at 4 KiB-aligned offsets drawn uniformly from [0, SIZE_BYTES) by xorshift64
 * seeded with SEED (default 1; the same seed gives the same offsets, see offset_of()); every block
 * holds PATTERN repeated. Sleeps PACE_US microseconds (default 5000) after each write. Stops after
 * MAX_WRITES writes (default 1000000) or as soon as STOP_FILE exists (checked before every write,
 * after the first). Creates READY_FILE (empty) once the first write has completed, so a caller can
 * wait for the writer to be running. At the end writes OUT_FILE, one latency per line in whole
 * microseconds in the order of the writes, through OUT_FILE.tmp and a rename, so OUT_FILE, once it
 * exists, is complete. Exit 0 on success; 1 with a message on stderr on any failure; 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
/* 16 bytes, repeated over each written block: a host can find the blocks this tool wrote. */
#define PATTERN "tm-wlat pattern\n"

static const char *prog = "tm-wlat";

static void usage(void) {
    fprintf(stderr,
            "usage: %s [-s SEED] [-p PACE_US] [-n MAX_WRITES] [-x STOP_FILE] [-r READY_FILE]\n"
            "          DEVICE SIZE_BYTES OUT_FILE\n"
            "Writes 4 KiB blocks with O_DIRECT|O_DSYNC at seeded random 4 KiB-aligned offsets in the\n"
            "first SIZE_BYTES of DEVICE, PACE_US microseconds apart (default 5000), until MAX_WRITES\n"
            "(default 1000000) or STOP_FILE exists; creates READY_FILE after the first write; writes\n"
            "one latency in microseconds per line to OUT_FILE at the end.\n",
            prog);
    exit(2);
}

static void die(const char *what, const char *arg) {
    fprintf(stderr, "%s: %s %s: %s\n", prog, what, arg, strerror(errno));
    exit(1);
}

/* A non-negative integer argument, or a usage error naming the option. */
static uint64_t number(const char *text, const char *name) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        fprintf(stderr, "%s: %s must be a non-negative integer, not '%s'\n", prog, name, text);
        usage();
    }
    return (uint64_t)v;
}

/* Marsaglia's xorshift64; the state never becomes 0 from a non-zero start. */
static uint64_t xorshift64(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* The next offset: a whole block in [0, blocks * BLOCK). */
static uint64_t offset_of(uint64_t *state, uint64_t blocks) {
    return (xorshift64(state) % blocks) * BLOCK;
}

static uint64_t now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* Sleeps us microseconds, resuming after a signal. */
static void pause_us(uint64_t us) {
    struct timespec t = {.tv_sec = (time_t)(us / 1000000u), .tv_nsec = (long)(us % 1000000u) * 1000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

int main(int argc, char **argv) {
    uint64_t seed = 1, pace_us = 5000, max_writes = 1000000;
    const char *stop_file = NULL, *ready_file = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "s:p:n:x:r:h")) != -1) {
        switch (opt) {
            case 's': seed = number(optarg, "SEED"); break;
            case 'p': pace_us = number(optarg, "PACE_US"); break;
            case 'n': max_writes = number(optarg, "MAX_WRITES"); break;
            case 'x': stop_file = optarg; break;
            case 'r': ready_file = optarg; break;
            default: usage();
        }
    }
    if (argc - optind != 3) {
        usage();
    }
    const char *device = argv[optind];
    uint64_t size = number(argv[optind + 1], "SIZE_BYTES");
    const char *out_file = argv[optind + 2];
    uint64_t blocks = size / BLOCK;
    if (blocks == 0) {
        fprintf(stderr, "%s: SIZE_BYTES must be at least %d, not %" PRIu64 "\n", prog, BLOCK, size);
        usage();
    }
    if (max_writes == 0) {
        fprintf(stderr, "%s: MAX_WRITES must be at least 1\n", prog);
        usage();
    }

    /* O_DIRECT needs an aligned buffer; O_DSYNC makes each write a write plus a flush. */
    void *buf;
    if ((errno = posix_memalign(&buf, BLOCK, BLOCK)) != 0) {
        die("cannot allocate", "the write buffer");
    }
    for (size_t i = 0; i < BLOCK; i += sizeof PATTERN - 1) {
        memcpy((char *)buf + i, PATTERN, sizeof PATTERN - 1);
    }
    /* The latencies stay in memory until the end: no file I/O of this tool between the writes. */
    uint32_t *lat = malloc(max_writes * sizeof *lat);
    if (lat == NULL) {
        errno = ENOMEM;
        die("cannot allocate the latencies of", "MAX_WRITES writes (lower -n)");
    }
    int fd = open(device, O_RDWR | O_DIRECT | O_DSYNC);
    if (fd < 0) {
        die("cannot open", device);
    }

    uint64_t state = seed != 0 ? seed : 0x9E3779B97F4A7C15u; /* xorshift must not start at 0 */
    uint64_t n = 0;
    while (n < max_writes && (n == 0 || stop_file == NULL || access(stop_file, F_OK) != 0)) {
        uint64_t off = offset_of(&state, blocks);
        uint64_t t0 = now_us();
        ssize_t w = pwrite(fd, buf, BLOCK, (off_t)off);
        uint64_t t1 = now_us();
        if (w != BLOCK) {
            if (w >= 0) {
                errno = EIO; /* a short write on a block device: report it as an I/O error */
            }
            char at[32];
            snprintf(at, sizeof at, "%" PRIu64, off);
            fprintf(stderr, "%s: write %" PRIu64 " at offset %s of %s failed: %s\n", prog, n + 1, at, device,
                    strerror(errno));
            return 1;
        }
        lat[n++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
        if (n == 1 && ready_file != NULL) {
            int r = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (r < 0 || close(r) != 0) {
                die("cannot create", ready_file);
            }
        }
        pause_us(pace_us);
    }
    if (close(fd) != 0) {
        die("cannot close", device);
    }

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", out_file) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        die("cannot write", out_file);
    }
    FILE *out = fopen(tmp, "w");
    if (out == NULL) {
        die("cannot create", tmp);
    }
    for (uint64_t i = 0; i < n; i++) {
        fprintf(out, "%" PRIu32 "\n", lat[i]);
    }
    if (ferror(out) || fclose(out) != 0) {
        die("cannot write", tmp);
    }
    if (rename(tmp, out_file) != 0) {
        die("cannot rename to", out_file);
    }
    return 0;
}
