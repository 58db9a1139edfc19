package io.tidemark.demo;

import io.tidemark.core.Human;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.files.FileEntry;
import io.tidemark.workers.files.GuestFsKernel;
import io.tidemark.workers.files.PointFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "files",
        mixinStandardHelpOptions = true,
        description = {
            "File-level restore vs a full restore of the same point, in one run: builds a sparse GPT disk",
            "with one ext4 file system holding --data of random files and a 10 MiB file, backs it up into",
            "a repository under --dir, then times `tidemark files`' way (appliance start, listing a",
            "directory, getting the 10 MiB file, with the bytes fetched for each) and a full restore of",
            "the disk to a sparse raw file. Needs libguestfs-tools and a kernel for its appliance",
            "(deploy/guest/guestfs-kernel.sh). Figures: docs/benchmarks.md §11.",
        })
final class FilesBenchCommand implements Callable<Integer> {

    private static final int MIB = 1 << 20;

    @Option(names = "--dir", required = true, description = "scratch directory (needs about 2x --data free)")
    Path dir;

    @Option(names = "--disk-gib", defaultValue = "20", description = "disk size in GiB (default ${DEFAULT-VALUE})")
    int diskGib;

    @Option(
            names = "--data-mib",
            defaultValue = "1024",
            description = "random data besides the 10 MiB file (default ${DEFAULT-VALUE})")
    int dataMib;

    @Option(
            names = "--link-mib-per-s",
            defaultValue = "0",
            description = "read the point through a link of this many MiB/s (a remote target); 0: the local"
                    + " disk's speed (default)")
    int linkMibPerS;

    @Option(names = "--appliance-accel", defaultValue = "auto", description = "auto or tcg, as for `tidemark files`")
    String accel;

    @Override
    public Integer call() throws IOException {
        Files.createDirectories(dir);
        java.util.Map<String, String> env = GuestFsKernel.environment();
        Path image = dir.resolve("files-bench.raw");
        Random random = new Random(11);
        byte[] big = new byte[10 * MIB];
        random.nextBytes(big);
        Files.write(dir.resolve("big.bin"), big);
        Path marker = dir.resolve("files-bench.built");
        if (Files.exists(marker) && Files.exists(image)) {
            System.out.println("reusing " + image + " (remove " + marker + " to rebuild it)");
        } else {
            Path filler = dir.resolve("filler.bin");
            try (OutputStream out = Files.newOutputStream(filler)) {
                byte[] b = new byte[MIB];
                for (int i = 0; i < dataMib; i++) {
                    random.nextBytes(b);
                    out.write(b);
                }
            }
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                f.setLength((long) diskGib << 30);
            }
            String script = "run\npart-disk /dev/sda gpt\nmkfs ext4 /dev/sda1\nmount /dev/sda1 /\nmkdir /data\n"
                    + "mkdir /filler\nupload " + filler + " /filler/filler.bin\nupload " + dir.resolve("big.bin")
                    + " /data/big.bin\n" + "touch /data/a\ntouch /data/b\nmkdir /data/sub\numount /\n";
            Files.writeString(dir.resolve("build.gf"), script);
            long t = System.nanoTime();
            ExternalCommand build = ExternalCommand.of(
                            "sh", "-c", "guestfish -a " + image + " < " + dir.resolve("build.gf"))
                    .timeout(Duration.ofMinutes(60));
            env.forEach(build::env);
            if (accel.equals("tcg")) {
                build.env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
            }
            build.run();
            Files.delete(filler);
            System.out.printf("built a %d GiB disk with %d MiB of data in %.1f s%n", diskGib, dataMib, secs(t));
            Files.writeString(marker, diskGib + " GiB, " + dataMib + " MiB\n");
        }

        Path repoDir = Files.createDirectories(dir.resolve("repo"));
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        long t = System.nanoTime();
        Manifest m = commit(repo, image);
        System.out.printf("backed up into %s in %.1f s%n", repoDir, secs(t));

        if (linkMibPerS > 0) {
            repo = Repository.open(new io.tidemark.targets.RateLimitedObjectTarget(
                    new FileObjectTarget(repoDir), (long) linkMibPerS << 20));
            System.out.printf("reading the point through a %d MiB/s link%n", linkMibPerS);
        }
        PointFiles.Options options = PointFiles.Options.defaults().withForceTcg(accel.equals("tcg"));
        long t0 = System.nanoTime();
        double launch;
        double ls;
        double get;
        long lsBytes;
        long getBytes;
        long launchBytes;
        try (PointFiles files = PointFiles.open(repo, m, "sda", dir.resolve("work"), options)) {
            files.fileSystems();
            launch = secs(t0);
            launchBytes = files.bytesFetched();
            t = System.nanoTime();
            List<FileEntry> entries = files.list("/data");
            ls = secs(t);
            lsBytes = files.bytesFetched() - launchBytes;
            t = System.nanoTime();
            files.get(List.of("/data/big.bin"), dir.resolve("got"), (p, l, b, took) -> {});
            get = secs(t);
            getBytes = files.bytesFetched() - launchBytes - lsBytes;
            if (!Arrays.equals(Files.readAllBytes(dir.resolve("got/big.bin")), big)) {
                throw new IllegalStateException("the file got differs from the one written");
            }
            System.out.printf("listed %d entries of /data%n", entries.size());
        }
        double filesTotal = secs(t0);
        t = System.nanoTime();
        Restorer.Result full = new Restorer(repo, 8)
                .withoutImageDigest()
                .restoreDisk(m, "sda", dir.resolve("full.raw"), Restorer.Progress.NONE);
        double restore = secs(t);
        Files.delete(dir.resolve("full.raw"));

        System.out.printf(
                "%n%-44s %10s %14s%n",
                "step (" + diskGib + " GiB disk, " + dataMib + " MiB data"
                        + (linkMibPerS > 0 ? ", " + linkMibPerS + " MiB/s link" : "") + ")",
                "seconds",
                "fetched");
        row("appliance start + partitions + mount", launch, launchBytes);
        row("files ls /data", ls, lsBytes);
        row("files get /data/big.bin (10 MiB)", get, getBytes);
        row("total, file-level", filesTotal, launchBytes + lsBytes + getBytes);
        row("full restore of the disk (sparse raw)", restore, full.bytesFetched());
        return 0;
    }

    private static void row(String what, double s, long bytes) {
        System.out.printf("%-44s %10.1f %14s%n", what, s, Human.bytes(bytes));
    }

    private static double secs(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    private static Manifest commit(Repository repo, Path image) throws IOException {
        int chunk = repo.config().chunkSize();
        long size = Files.size(image);
        DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
        try (InputStream in = Files.newInputStream(image)) {
            byte[] buf = new byte[chunk];
            for (int c = 0; (long) c * chunk < size; c++) {
                int n = in.readNBytes(buf, 0, (int) Math.min(chunk, size - (long) c * chunk));
                index.set(c, repo.putChunk(Arrays.copyOf(buf, n), n).digest());
            }
        }
        Instant now = Instant.now();
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(now, new Random()),
                "files-bench",
                "hv1",
                "job-1",
                now,
                now,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "bench",
                Optional.empty(),
                List.of(new DiskEntry(
                        "sda",
                        size,
                        chunk,
                        index.finish().hex(),
                        "tm-1",
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                        0,
                        0)));
        repo.commit(m);
        return m;
    }
}
