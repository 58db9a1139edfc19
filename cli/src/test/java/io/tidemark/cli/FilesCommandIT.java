package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import io.tidemark.workers.files.FileEntry;
import io.tidemark.workers.files.GuestFsKernel;
import io.tidemark.workers.files.PointFiles;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Execution;
import org.junit.jupiter.api.parallel.ExecutionMode;

/**
 * {@code tidemark files}: real disks built with libguestfs (GPT with ext4, xfs, vfat, NTFS and LVM
 * partitions; MBR with ext4) are backed up into a repository, then listed and copied out of the point
 * through the appliance over Tidemark's NBD server, compared byte for byte with what was written. The
 * appliance runs under TCG (--appliance-accel tcg): /dev/kvm on the test machines may hang.
 *
 * <p>Each case starts its own appliance (the command's own, as a user's would), so the cases run
 * concurrently, the longest (two appliances, one after the other) first: they share only the
 * read-only point built once by {@link #buildDisksAndBackThemUp()}, each writes into its own
 * directory, and {@link StdStreams#perThread()} gives each the output of its own commands.
 */
@Execution(ExecutionMode.CONCURRENT)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FilesCommandIT {

    private static final int MIB = 1 << 20;
    /** 2023-11-14T22:13:20.123456789Z */
    private static final long MTIME = 1_700_000_000L;

    private static final long MTIME_NS = 123_456_789L;

    @RegisterExtension
    final StdStreams std = StdStreams.perThread();

    @TempDir
    static Path dir;

    static Path repoDir;
    static Manifest point;
    static byte[] big;
    static boolean ntfs;

    @BeforeAll
    static void buildDisksAndBackThemUp() throws Exception {
        big = new byte[10 * MIB];
        new Random(14).nextBytes(big);
        Files.write(dir.resolve("big.bin"), big);
        Files.writeString(dir.resolve("hello.txt"), "hello from the point\n");
        Files.writeString(dir.resolve("script.sh"), "#!/bin/sh\necho hi\n");
        Path gpt = dir.resolve("gpt.raw");
        Path mbr = dir.resolve("mbr.raw");
        try (var f = new java.io.RandomAccessFile(gpt.toFile(), "rw")) {
            f.setLength(520L * MIB);
        }
        try (var f = new java.io.RandomAccessFile(mbr.toFile(), "rw")) {
            f.setLength(64L * MIB);
        }
        StringBuilder s = new StringBuilder();
        s.append("run\n");
        s.append("part-init /dev/sda gpt\n");
        s.append("part-add /dev/sda p 2048 133119\n"); // 64 MiB ext4
        s.append("part-add /dev/sda p 133120 788479\n"); // 320 MiB xfs
        s.append("part-add /dev/sda p 788480 854015\n"); // 32 MiB vfat
        s.append("part-add /dev/sda p 854016 919551\n"); // 32 MiB ntfs
        s.append("part-add /dev/sda p 919552 1050623\n"); // 64 MiB LVM
        s.append("mkfs ext4 /dev/sda1\nmkfs xfs /dev/sda2\nmkfs vfat /dev/sda3\n-mkfs ntfs /dev/sda4\n");
        s.append("pvcreate /dev/sda5\nvgcreate vg0 /dev/sda5\nlvcreate lv0 vg0 32\nmkfs ext4 /dev/vg0/lv0\n");
        s.append("part-disk /dev/sdb mbr\nmkfs ext4 /dev/sdb1\n");
        for (String dev : List.of("/dev/sda1", "/dev/sda2", "/dev/vg0/lv0", "/dev/sdb1")) {
            s.append("mount ").append(dev).append(" /\n");
            s.append("mkdir /data\nmkdir /data/sub\n");
            s.append("upload ").append(dir.resolve("hello.txt")).append(" /data/hello.txt\n");
            s.append("upload ").append(dir.resolve("script.sh")).append(" /data/sub/script.sh\n");
            if (dev.equals("/dev/sda1")) {
                s.append("upload ").append(dir.resolve("big.bin")).append(" /data/big.bin\n");
                s.append("chown 1005 1006 /data/big.bin\nchmod 0600 /data/big.bin\n");
                s.append("utimens /data/big.bin 0 0 ").append(MTIME + 60).append(" 5\n");
            }
            s.append("chmod 0640 /data/hello.txt\nchown 1001 1002 /data/hello.txt\n");
            s.append("utimens /data/hello.txt 0 0 ")
                    .append(MTIME)
                    .append(' ')
                    .append(MTIME_NS)
                    .append('\n');
            s.append("chown 1003 1004 /data/sub/script.sh\nchmod 04755 /data/sub/script.sh\n");
            s.append("utimens /data/sub/script.sh 0 0 ").append(MTIME + 1).append(" 0\n");
            s.append("ln-s hello.txt /data/link\nlchown 1007 1008 /data/link\n");
            s.append("utimens /data/sub 0 0 ").append(MTIME + 2).append(" 0\n");
            s.append("umount /\n");
        }
        for (String dev : List.of("/dev/sda3", "/dev/sda4")) {
            s.append(dev.equals("/dev/sda4") ? "-" : "")
                    .append("mount ")
                    .append(dev)
                    .append(" /\n");
            s.append(dev.equals("/dev/sda4") ? "-" : "")
                    .append("upload ")
                    .append(dir.resolve("hello.txt"))
                    .append(" /hello.txt\n");
            s.append("-umount /\n");
        }
        s.append("list-filesystems\n");
        Path script = Files.writeString(dir.resolve("build.gf"), s.toString());
        ExternalCommand cmd = ExternalCommand.of("sh", "-c", "guestfish -a " + gpt + " -a " + mbr + " < " + script)
                .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
                .timeout(Duration.ofMinutes(15));
        kernel().forEach(cmd::env);
        ExternalCommand.Result built = cmd.run();
        // NTFS needs ntfs-3g on the host (the appliance is built from the host's packages)
        ntfs = Files.exists(Path.of("/usr/sbin/mkntfs")) || Files.exists(Path.of("/sbin/mkntfs"));
        if (ntfs) {
            assertThat(built.stdout()).contains("/dev/sda4: ntfs");
        }
        repoDir = Files.createDirectories(dir.resolve("repo"));
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        point = commit(repo, Map.of("sda", gpt, "sdb", mbr));
    }

    @Test
    @Order(2)
    void listsAndGetsFilesOfEveryFileSystemOnAGptDiskFetchingOnlyWhatTheyRead() throws Exception {
        Repository repo = Repository.open(new FileObjectTarget(repoDir));
        try (PointFiles files = PointFiles.open(
                repo,
                point,
                "sda",
                dir.resolve("work"),
                PointFiles.Options.defaults().withForceTcg(true))) {
            List<String> fs = files.fileSystems().stream()
                    .map(f -> f.name() + "=" + f.type())
                    .toList();
            assertThat(fs).contains("sda1=ext4", "sda2=xfs", "sda3=vfat", "vg0/lv0=ext4");
            if (ntfs) {
                assertThat(fs).contains("sda4=ntfs");
            }
            for (String f : List.of("sda1", "sda2", "vg0/lv0")) {
                List<FileEntry> data = files.list(f + ":/data");
                FileEntry hello = entry(data, "hello.txt");
                assertThat(hello.type()).isEqualTo("file");
                assertThat(hello.mode()).as(f).isEqualTo(0640);
                assertThat(hello.uid()).isEqualTo(1001);
                assertThat(hello.gid()).isEqualTo(1002);
                assertThat(hello.size()).isEqualTo(21);
                assertThat(hello.mtime()).isEqualTo(Instant.ofEpochSecond(MTIME, MTIME_NS));
                FileEntry link = entry(data, "link");
                assertThat(link.type()).isEqualTo("symlink");
                assertThat(link.target()).contains("hello.txt");
                assertThat(link.uid()).isEqualTo(1007);
                assertThat(entry(data, "sub").type()).isEqualTo("directory");
                FileEntry script = files.stat(f + ":/data/sub/script.sh");
                assertThat(script.mode()).isEqualTo(04755);
                assertThat(script.modeString()).isEqualTo("-rwsr-xr-x");
            }
            assertThat(files.list("sda3:/")).extracting(FileEntry::name).contains("hello.txt");
            if (ntfs) {
                assertThat(files.list("sda4:/")).extracting(FileEntry::name).contains("hello.txt");
            }
            // a missing path names the nearest existing directory; a plain /path is ambiguous here
            assertThatThrownBy(() -> files.list("sda1:/data/sub/nope/deeper"))
                    .hasMessageContaining("no /data/sub/nope/deeper in sda1")
                    .hasMessageContaining("nearest existing directory is sda1:/data/sub");
            assertThatThrownBy(() -> files.list("/data"))
                    .hasMessageContaining("name one: FS:/data")
                    .hasMessageContaining("sda2 (xfs)");

            long beforeGet = files.bytesFetched();
            Path out = dir.resolve("got");
            files.get(
                    List.of("sda1:/data/big.bin", "sda1:/data/hello.txt", "sda1:/data/link", "sda2:/data/sub"),
                    out,
                    (p, local, bytes, took) -> {});
            assertThat(Files.readAllBytes(out.resolve("big.bin"))).isEqualTo(big);
            assertMeta(out.resolve("big.bin"), 0600, 1005, 1006, Instant.ofEpochSecond(MTIME + 60, 5));
            assertThat(Files.readString(out.resolve("hello.txt"))).isEqualTo("hello from the point\n");
            assertMeta(out.resolve("hello.txt"), 0640, 1001, 1002, Instant.ofEpochSecond(MTIME, MTIME_NS));
            assertThat(Files.readSymbolicLink(out.resolve("link"))).isEqualTo(Path.of("hello.txt"));
            assertThat(Files.getAttribute(out.resolve("link"), "unix:uid", LinkOption.NOFOLLOW_LINKS))
                    .isEqualTo(1007);
            // a directory (from xfs) through tar: content, setuid mode, owner, mtime (tar keeps seconds)
            Path script = out.resolve("sub").resolve("script.sh");
            assertThat(Files.readString(script)).isEqualTo("#!/bin/sh\necho hi\n");
            assertMeta(script, 04755, 1003, 1004, Instant.ofEpochSecond(MTIME + 1));
            assertThat(Files.getLastModifiedTime(out.resolve("sub")))
                    .isEqualTo(FileTime.from(Instant.ofEpochSecond(MTIME + 2)));

            long fetched = files.bytesFetched();
            assertThat(fetched - beforeGet).isGreaterThanOrEqualTo(big.length);
            // five file systems mounted and the 10 MiB file read: still a fraction of the 520 MiB disk
            assertThat(fetched).isLessThan(files.diskSize() / 4);
        }
    }

    @Test
    @Order(1)
    void theCommandListsAnMbrDiskAndGetsFilesAsJson() throws Exception {
        // the appliance sees the chosen disk (sdb of the point) as its only disk, sda
        Path out = dir.resolve("cli-out");
        int code = Main.execute(
                "files",
                "get",
                point.id(),
                "/data/hello.txt",
                "/data/sub",
                "--disk",
                "sdb",
                "--from",
                repoDir.toString(),
                "--out",
                out.toString(),
                "--appliance-accel",
                "tcg",
                "--json");
        assertThat(code).as(std.err()).isZero();
        assertThat(std.err()).contains("got sda1:/data/hello.txt");
        String o = std.out();
        JsonNode j = Json.mapper().readTree(o.substring(o.indexOf("{\n")));
        assertThat(j.path("restorePoint").asText()).isEqualTo(point.id());
        assertThat(j.path("files")).hasSize(2);
        assertThat(j.path("bytesFetched").asLong()).isPositive().isLessThan(16L * MIB);
        assertMeta(out.resolve("hello.txt"), 0640, 1001, 1002, Instant.ofEpochSecond(MTIME, MTIME_NS));
        assertMeta(out.resolve("sub/script.sh"), 04755, 1003, 1004, Instant.ofEpochSecond(MTIME + 1));

        // the text listing, and a bad path, in one more appliance
        std.reset();
        code = Main.execute(
                "files",
                "ls",
                point.id(),
                "--disk",
                "sdb",
                "--from",
                repoDir.toString(),
                "--appliance-accel",
                "tcg",
                "sda1:/data/missing");
        assertThat(code).isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err()).contains("nearest existing directory is sda1:/data");
    }

    @Test
    @Order(3)
    void mountsAFileSystemOfThePointReadOnlyUntilInterrupted() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        int[] code = {-1};
        Thread mounting = new Thread(() -> code[0] = Main.execute(
                "mount",
                point.id(),
                mnt.toString(),
                "--fs",
                "vg0/lv0",
                "--disk",
                "sda",
                "--from",
                repoDir.toString(),
                "--appliance-accel",
                "tcg"));
        mounting.start();
        try {
            org.awaitility.Awaitility.await("the mount")
                    .atMost(Duration.ofMinutes(10))
                    .until(() -> std.out().contains("mounted vg0/lv0") || !mounting.isAlive());
            assertThat(mounting.isAlive()).as(std.err()).isTrue();
            // the LVM volume's ext4, read through FUSE: content and metadata as written
            Path hello = mnt.resolve("data/hello.txt");
            assertThat(Files.readString(hello)).isEqualTo("hello from the point\n");
            assertMeta(hello, 0640, 1001, 1002, Instant.ofEpochSecond(MTIME, MTIME_NS));
            assertThat(Files.readSymbolicLink(mnt.resolve("data/link"))).isEqualTo(Path.of("hello.txt"));
            assertThatThrownBy(() -> Files.writeString(mnt.resolve("data/new.txt"), "x"))
                    .isInstanceOf(java.io.IOException.class);
        } finally {
            mounting.interrupt();
            mounting.join(120_000);
        }
        assertThat(mounting.isAlive()).isFalse();
        assertThat(code[0]).as(std.err()).isZero();
        assertThat(Files.readString(Path.of("/proc/self/mounts"))).doesNotContain(mnt.toString());
    }

    /** The appliance's kernel; unpacked by deploy/guest/guestfs-kernel.sh on first use. */
    private static Map<String, String> kernel() {
        try {
            return GuestFsKernel.environment();
        } catch (io.tidemark.core.PermanentException e) {
            Path p = Path.of("").toAbsolutePath();
            while (p != null && !Files.exists(p.resolve("deploy/guest/guestfs-kernel.sh"))) {
                p = p.getParent();
            }
            if (p == null) {
                throw e;
            }
            ExternalCommand.of(p.resolve("deploy/guest/guestfs-kernel.sh").toString())
                    .timeout(Duration.ofMinutes(15))
                    .run();
            return GuestFsKernel.environment();
        }
    }

    private static FileEntry entry(List<FileEntry> entries, String name) {
        return entries.stream()
                .filter(e -> e.name().equals(name))
                .findFirst()
                .orElseThrow(() -> new AssertionError(name + " not in " + entries));
    }

    private static void assertMeta(Path p, int mode, int uid, int gid, Instant mtime) throws Exception {
        assertThat((Integer) Files.getAttribute(p, "unix:mode") & 07777)
                .as(p + " mode")
                .isEqualTo(mode);
        assertThat(Files.getAttribute(p, "unix:uid")).as(p + " uid").isEqualTo(uid);
        assertThat(Files.getAttribute(p, "unix:gid")).as(p + " gid").isEqualTo(gid);
        assertThat(Files.getLastModifiedTime(p).toInstant()).as(p + " mtime").isEqualTo(mtime);
    }

    /** One point of VM "files" with the given raw images as its disks, chunked as a backup would. */
    static Manifest commit(Repository repo, Map<String, Path> disks) throws Exception {
        int chunk = repo.config().chunkSize();
        List<DiskEntry> entries = new ArrayList<>();
        for (var d : new java.util.TreeMap<>(disks).entrySet()) {
            long size = Files.size(d.getValue());
            DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
            try (InputStream in = Files.newInputStream(d.getValue())) {
                byte[] buf = new byte[chunk];
                for (int c = 0; (long) c * chunk < size; c++) {
                    int n = in.readNBytes(buf, 0, (int) Math.min(chunk, size - (long) c * chunk));
                    index.set(c, repo.putChunk(Arrays.copyOf(buf, n), n).digest());
                }
            }
            entries.add(new DiskEntry(
                    d.getKey(),
                    size,
                    chunk,
                    index.finish().hex(),
                    "tm-1",
                    Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                    0,
                    0));
        }
        Instant now = Instant.now();
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(now, new Random()),
                "files",
                "hv1",
                "job-1",
                now,
                now,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.empty(),
                entries);
        repo.commit(m);
        return m;
    }
}
