package io.tidemark.workers.files;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.Repository;
import io.tidemark.workers.instant.RestorePointExport;
import io.tidemark.workers.nbd.NbdServer;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The files of one disk of a restore point, read without restoring the disk.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>The disk is served read-only over NBD on 127.0.0.1 straight from the repository ({@link
 *       RestorePointExport}: every chunk verified, zero chunks never fetched) to one libguestfs
 *       appliance ({@link GuestFish}), which reads the partition table (MBR, GPT), LVM and the file
 *       system itself. Only the chunks the appliance reads are fetched; {@link #bytesFetched()}
 *       counts them.
 *   <li>Paths are {@code FS:/path}, FS being a {@link FileSystemInfo#name()}; a plain {@code /path}
 *       means the disk's only readable file system. A path that does not exist names the nearest
 *       existing directory; a file system that cannot be read is named with its type.
 *   <li>{@link #get} copies files, directories (recursively, through {@code tar}) and symlinks into a
 *       local directory with their mode, mtime and, when run as root, owner and group; device
 *       nodes, fifos and sockets are refused.
 *   <li>One file system is mounted at a time (read-only); not thread-safe.
 * </ul>
 */
public final class PointFiles implements AutoCloseable {

    /**
     * How the appliance is run.
     *
     * @param forceTcg run the appliance under TCG even where /dev/kvm exists (hosts whose KVM does not
     *     work); false lets libguestfs pick KVM when it is usable
     */
    public record Options(
            Duration launchTimeout, Duration callTimeout, RestorePointExport.Options cache, boolean forceTcg) {
        public static Options defaults() {
            // prefetch 2 chunks: file systems read small runs; the rest is fetched on demand
            return new Options(
                    Duration.ofMinutes(10),
                    Duration.ofMinutes(30),
                    new RestorePointExport.Options(128L << 20, 2, 4),
                    false);
        }

        public Options withForceTcg(boolean force) {
            return new Options(launchTimeout, callTimeout, cache, force);
        }
    }

    /** Told about each file {@link #get} writes. */
    public interface Progress {
        void copied(String path, Path local, long bytes, Duration took);
    }

    /** What {@link #get} wrote. */
    public record Copied(String path, Path local, String type, long bytes) {}

    private static final Pattern SIMPLE_NAME = Pattern.compile("[A-Za-z0-9._@%+=,:^-]+");
    private static final Set<String> UNREADABLE = Set.of("unknown", "swap", "LVM2_member", "");

    private final RestorePointExport export;
    private final NbdServer server;
    private final GuestFish fish;
    private final Path workDir;
    private final String describe;
    private List<FileSystemInfo> fileSystems;
    private String mounted;

    private PointFiles(RestorePointExport export, NbdServer server, GuestFish fish, Path workDir, String describe) {
        this.export = export;
        this.server = server;
        this.fish = fish;
        this.workDir = workDir;
        this.describe = describe;
    }

    /**
     * Serves disk {@code disk} of point {@code m} and starts the appliance on it.
     *
     * @param workDir for the appliance's log and temporary archives
     */
    public static PointFiles open(Repository repo, Manifest m, String disk, Path workDir, Options options) {
        Map<String, String> env = new java.util.HashMap<>(GuestFsKernel.environment());
        if (options.forceTcg()) {
            env.put("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
        }
        RestorePointExport export = RestorePointExport.open(repo, m, disk, options.cache());
        NbdServer server = null;
        try {
            server = NbdServer.loopback(export, 4);
            Files.createDirectories(workDir);
            GuestFish fish = GuestFish.launch(
                    server.uri(),
                    env,
                    workDir.resolve("guestfish.log"),
                    options.launchTimeout(),
                    options.callTimeout());
            return new PointFiles(
                    export, server, fish, workDir, "disk '" + disk + "' of restore point " + m.id() + " of " + m.vm());
        } catch (IOException e) {
            close(server, export);
            throw new PermanentException("cannot create " + workDir + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            close(server, export);
            throw e;
        }
    }

    private static void close(NbdServer server, RestorePointExport export) {
        if (server != null) {
            server.close();
        }
        export.close();
    }

    /** The disk's size in bytes. */
    public long diskSize() {
        return export.size();
    }

    /** Plaintext bytes fetched from the repository so far. */
    public long bytesFetched() {
        return export.bytesFetched();
    }

    /** Chunks fetched from the repository so far. */
    public long chunksFetched() {
        return export.chunksFetched();
    }

    /** The file systems on the disk: whole disk, partitions, logical volumes. */
    public List<FileSystemInfo> fileSystems() {
        if (fileSystems == null) {
            List<FileSystemInfo> out = new ArrayList<>();
            for (String line : fish.lines("list-filesystems")) {
                int colon = line.lastIndexOf(": ");
                if (colon < 0) {
                    continue;
                }
                String device = line.substring(0, colon).strip();
                String type = line.substring(colon + 2).strip();
                String name = device.startsWith("/dev/") ? device.substring(5) : device;
                out.add(new FileSystemInfo(name, device, type, !UNREADABLE.contains(type)));
            }
            fileSystems = List.copyOf(out);
        }
        return fileSystems;
    }

    /**
     * The entries of a directory (sorted by name), or the one entry of a file.
     *
     * @param path {@code FS:/path} or {@code /path}
     */
    public List<FileEntry> list(String path) {
        Located at = locate(path);
        FileEntry self = stat(at);
        if (!self.isDirectory()) {
            return List.of(self);
        }
        List<String> names = new ArrayList<>(fish.lines("ls", at.path()));
        names.sort(null);
        return statAll(at.path(), names);
    }

    /** The entry at {@code path}. */
    public FileEntry stat(String path) {
        return stat(locate(path));
    }

    /**
     * Copies each of {@code paths} into {@code out} (created if missing) under its last name.
     *
     * @return what was written, in order
     */
    public List<Copied> get(List<String> paths, Path out, Progress progress) {
        List<Copied> done = new ArrayList<>();
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw new PermanentException("cannot create the output directory " + out + ": " + e.getMessage(), e);
        }
        for (String p : paths) {
            Located at = locate(p);
            FileEntry e = stat(at);
            String localName = e.path().equals("/") ? at.fs().name().replace('/', '-') : e.name();
            Path local = out.toAbsolutePath().resolve(localName);
            if (Files.exists(local, LinkOption.NOFOLLOW_LINKS)) {
                throw new PermanentException(local + " exists; choose an empty --out directory or remove it");
            }
            long t0 = System.nanoTime();
            long bytes;
            switch (e.type()) {
                case "file" -> {
                    fish.call("download", e.path(), local.toString());
                    apply(local, e);
                    bytes = e.size();
                }
                case "symlink" -> {
                    symlink(local, e);
                    bytes = 0;
                }
                case "directory" -> bytes = directory(e, local);
                default ->
                    throw new PermanentException(at.describe() + " is a " + e.type()
                            + "; only files, directories and symlinks are restored");
            }
            done.add(new Copied(at.describe(), local, e.type(), bytes));
            progress.copied(at.describe(), local, bytes, Duration.ofNanos(System.nanoTime() - t0));
        }
        return done;
    }

    /** A directory through tar: modes, mtimes, symlinks and (as root) numeric owners preserved. */
    private long directory(FileEntry e, Path local) {
        Path tar = workDir.toAbsolutePath().resolve("get-" + System.nanoTime() + ".tar");
        try {
            fish.call("tar-out", e.path(), tar.toString(), "numericowner:true");
            Files.createDirectories(local);
            ExternalCommand.of("tar", "-xpf", tar.toString(), "-C", local.toString(), "--numeric-owner")
                    .timeout(Duration.ofHours(2))
                    .ifMissing("install tar")
                    .run();
            long bytes = Files.size(tar);
            apply(local, e);
            return bytes;
        } catch (IOException x) {
            throw new PermanentException("cannot write " + local + ": " + x.getMessage(), x);
        } finally {
            try {
                Files.deleteIfExists(tar);
            } catch (IOException x) {
                // a leftover temporary archive in the work directory
            }
        }
    }

    private static void symlink(Path local, FileEntry e) {
        try {
            Files.createSymbolicLink(local, Path.of(e.target().orElse("")));
            owner(local, e, LinkOption.NOFOLLOW_LINKS);
            Files.getFileAttributeView(local, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                    .setTimes(FileTime.from(e.mtime()), null, null);
        } catch (IOException x) {
            throw new PermanentException("cannot create the symlink " + local + ": " + x.getMessage(), x);
        }
    }

    /** Owner (when permitted), mode, then mtime (chown clears setuid bits, a write changes mtime). */
    private static void apply(Path local, FileEntry e) {
        try {
            owner(local, e);
            Files.setPosixFilePermissions(local, permissions(e.mode()));
            if ((e.mode() & 07000) != 0) {
                Files.setAttribute(local, "unix:mode", e.mode() | (e.isDirectory() ? 040000 : 0100000));
            }
            Files.setLastModifiedTime(local, FileTime.from(e.mtime()));
        } catch (IOException | UnsupportedOperationException x) {
            throw new PermanentException("cannot set the metadata of " + local + ": " + x.getMessage(), x);
        }
    }

    private static void owner(Path local, FileEntry e, LinkOption... options) throws IOException {
        try {
            Files.setAttribute(local, "unix:uid", (int) e.uid(), options);
            Files.setAttribute(local, "unix:gid", (int) e.gid(), options);
        } catch (FileSystemException x) {
            // not root: the files belong to the caller, as with cp
        }
    }

    static Set<PosixFilePermission> permissions(int mode) {
        Set<PosixFilePermission> s = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] order = {
            PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE,
            PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE,
            PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE
        };
        for (int i = 0; i < 9; i++) {
            if ((mode & (1 << (8 - i))) != 0) {
                s.add(order[i]);
            }
        }
        return s;
    }

    /** A path resolved to a file system (mounted) and an absolute path in it. */
    private record Located(FileSystemInfo fs, String path) {
        String describe() {
            return fs.name() + ":" + path;
        }
    }

    private Located locate(String spec) {
        String fsName = null;
        String path = spec;
        int colon = spec.indexOf(':');
        if (colon > 0 && !spec.startsWith("/")) {
            fsName = spec.substring(0, colon);
            path = spec.substring(colon + 1);
        }
        if (path.isEmpty()) {
            path = "/";
        }
        if (!path.startsWith("/")) {
            throw new PermanentException("'" + spec + "' is not an absolute path: write FS:/path or /path");
        }
        path = normalise(path);
        List<FileSystemInfo> all = fileSystems();
        FileSystemInfo fs;
        if (fsName == null) {
            List<FileSystemInfo> readable =
                    all.stream().filter(FileSystemInfo::readable).toList();
            if (readable.size() != 1) {
                throw new PermanentException(describe + " holds " + readable.size() + " readable file systems"
                        + describeAll(all) + "; name one: FS:" + path);
            }
            fs = readable.get(0);
        } else {
            String n = fsName.startsWith("/dev/") ? fsName.substring(5) : fsName;
            fs = all.stream()
                    .filter(f -> f.name().equals(n))
                    .findFirst()
                    .orElseThrow(() -> new PermanentException(
                            describe + " has no file system '" + n + "'; it has" + describeAll(all)));
        }
        mount(fs);
        return new Located(fs, path);
    }

    private static String describeAll(List<FileSystemInfo> all) {
        if (all.isEmpty()) {
            return " (no partition, logical volume or file system found)";
        }
        StringBuilder b = new StringBuilder(": ");
        for (FileSystemInfo f : all) {
            b.append(b.length() > 2 ? ", " : "").append(f.name()).append(" (").append(f.type());
            b.append(f.readable() ? "" : ", not readable").append(')');
        }
        return b.toString();
    }

    private void mount(FileSystemInfo fs) {
        if (fs.device().equals(mounted)) {
            return;
        }
        if (!fs.readable()) {
            throw new PermanentException(fs.name() + " of " + describe + " holds no file system Tidemark can read"
                    + " (detected: " + (fs.type().isEmpty() ? "nothing" : fs.type()) + "); readable are ext2/3/4,"
                    + " xfs, vfat, ntfs and the others libguestfs's appliance mounts");
        }
        if (mounted != null) {
            fish.call("umount-all");
            mounted = null;
        }
        try {
            fish.call("mount-ro", fs.device(), "/");
        } catch (GuestFish.GuestFishException e) {
            throw new PermanentException(
                    "cannot mount " + fs.name() + " (" + fs.type() + ") of " + describe + " read-only: " + e.detail()
                            + "; the file system type may be unsupported by the appliance",
                    e);
        }
        mounted = fs.device();
    }

    private FileEntry stat(Located at) {
        if (at.path().equals("/")) {
            return FileEntry.of("/", parseStat(fish.call("lstatns", "/")), Optional.empty());
        }
        Map<String, Long> st;
        try {
            st = parseStat(fish.call("lstatns", at.path()));
        } catch (GuestFish.GuestFishException e) {
            throw new PermanentException(
                    "no " + at.path() + " in " + at.fs().name() + " of " + describe
                            + "; the nearest existing directory is " + at.fs().name() + ":"
                            + nearestDirectory(at.path())
                            + " (list it with `tidemark files ls`)",
                    e);
        }
        Optional<String> target = Optional.empty();
        if (FileEntry.type(st.getOrDefault("st_mode", 0L).intValue()).equals("symlink")) {
            target = Optional.of(fish.call("readlink", at.path()).stripTrailing());
        }
        return FileEntry.of(at.path(), st, target);
    }

    private String nearestDirectory(String path) {
        String p = path;
        while (!p.equals("/")) {
            int slash = p.lastIndexOf('/');
            p = slash <= 0 ? "/" : p.substring(0, slash);
            if (fish.call("is-dir", p).strip().equals("true")) {
                return p;
            }
        }
        return "/";
    }

    private List<FileEntry> statAll(String dir, List<String> names) {
        String base = dir.equals("/") ? "/" : dir + "/";
        Map<String, Map<String, Long>> stats = new LinkedHashMap<>();
        List<String> batch = new ArrayList<>();
        for (String n : names) {
            if (SIMPLE_NAME.matcher(n).matches()) {
                batch.add(n);
                if (batch.size() == 200) {
                    statBatch(dir, batch, stats);
                    batch.clear();
                }
            } else {
                stats.put(n, parseStat(fish.call("lstatns", base + n)));
            }
        }
        statBatch(dir, batch, stats);
        List<FileEntry> out = new ArrayList<>();
        for (String n : names) {
            Map<String, Long> st = stats.get(n);
            if (st == null || st.getOrDefault("st_ino", 0L) == -1) {
                continue; // vanished between ls and stat: cannot happen read-only, but never invent an entry
            }
            Optional<String> target = Optional.empty();
            if (FileEntry.type(st.getOrDefault("st_mode", 0L).intValue()).equals("symlink")) {
                target = Optional.of(fish.call("readlink", base + n).stripTrailing());
            }
            out.add(FileEntry.of(base + n, st, target));
        }
        return out;
    }

    private void statBatch(String dir, List<String> names, Map<String, Map<String, Long>> into) {
        if (names.isEmpty()) {
            return;
        }
        List<Map<String, Long>> stats = parseStats(fish.call("lstatnslist", dir, String.join(" ", names)));
        if (stats.size() != names.size()) {
            throw new PermanentException("guestfish lstatnslist returned " + stats.size() + " entries for "
                    + names.size() + " names in " + dir);
        }
        for (int i = 0; i < names.size(); i++) {
            into.put(names.get(i), stats.get(i));
        }
    }

    /** {@code st_x: N} lines of one struct. */
    static Map<String, Long> parseStat(String out) {
        Map<String, Long> m = new LinkedHashMap<>();
        for (String line : out.split("\n")) {
            String l = line.strip();
            int c = l.indexOf(": ");
            if (c > 0 && l.startsWith("st_")) {
                m.put(l.substring(0, c), Long.parseLong(l.substring(c + 2).strip()));
            }
        }
        return m;
    }

    /** {@code [i] = { … }} blocks of a struct list. */
    static List<Map<String, Long>> parseStats(String out) {
        List<Map<String, Long>> list = new ArrayList<>();
        StringBuilder cur = null;
        for (String line : out.split("\n")) {
            if (line.startsWith("[") && line.endsWith("{")) {
                cur = new StringBuilder();
            } else if (line.equals("}") && cur != null) {
                list.add(parseStat(cur.toString()));
                cur = null;
            } else if (cur != null) {
                cur.append(line).append('\n');
            }
        }
        return list;
    }

    static String normalise(String path) {
        List<String> parts = new ArrayList<>();
        for (String p : path.split("/")) {
            if (p.isEmpty() || p.equals(".")) {
                continue;
            }
            if (p.equals("..")) {
                if (!parts.isEmpty()) {
                    parts.remove(parts.size() - 1);
                }
            } else {
                parts.add(p);
            }
        }
        return "/" + String.join("/", parts);
    }

    /** Stops the appliance and the NBD server. */
    @Override
    public void close() {
        try {
            fish.close();
        } catch (RetriableException | PermanentException e) {
            // the appliance's process is killed by GuestFish.close itself
        }
        close(server, export);
    }

    @Override
    public String toString() {
        return "PointFiles[" + describe + "]";
    }
}
