package io.tidemark.targets.file;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.hypervisor.HostScratch;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.core.target.TargetKeys;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An {@link ObjectTarget} on a directory of a local or NFS-mounted file system. Key {@code a/b/c}
 * is the file {@code <root>/a/b/c}; the root directory must exist (it is never created, so an
 * unmounted NFS share or a mistyped path is reported instead of silently filled).
 *
 * <p>Contract beyond the port:
 *
 * <ul>
 *   <li>Keys are validated: empty keys, absolute keys, empty, {@code .} or {@code ..} segments, NUL
 *       characters and segments containing {@value #TEMP_MARKER} are rejected with a {@link
 *       PermanentException}.
 *   <li>{@link #putIfAbsent} is atomic and exclusive, also on NFS: the bytes go to a temporary
 *       file in the destination directory, which is fsynced and then hard-linked to the final name;
 *       the parent directory is fsynced before the call returns true.
 *   <li>{@link #putIfAbsentDeferred} writes to a temporary name that only this instance sees and
 *       starts its fsync in the background; {@link #flush()} (the barrier) waits for those fsyncs,
 *       links the files to their final names and fsyncs each changed directory once. So no final
 *       name ever holds bytes that a crash could lose, the fsyncs overlap the rest of the backup,
 *       and a directory is fsynced once per batch (ADR 21). With {@link Durability#FILESYSTEM}
 *       (a repository on a file system of its own) no object is fsynced: the barrier calls {@code
 *       syncfs(2)} once before the links and once after them (ADR 25). Durable puts ({@link
 *       #putIfAbsent}: manifests, the config) fsync their file and directory in both modes.
 *   <li>An existing name that another writer linked recently (its ctime younger than {@link
 *       #RECENT_LINK}) may not be durable yet: {@link #exists} still answers true (the bytes under
 *       it are durable), and the next {@link #flush()} fsyncs its directory, so a manifest written
 *       after the flush never refers to a name a power loss could take away.
 *   <li>Temporary files left behind by a crash are never returned by {@link #get}, {@link
 *       #exists} or {@link #list}.
 *   <li>A key cannot be both an object and a "directory" of other keys ({@code a} and {@code
 *       a/b}): the second write fails with a {@link PermanentException}. Tidemark's key layout
 *       never does this.
 *   <li>Disk full, quota exceeded, read-only file system and permission errors are {@link
 *       PermanentException}s naming the path and the fix; other I/O errors are {@link
 *       RetriableException}s.
 * </ul>
 *
 * <p>Thread-safe; several processes and hosts may share one root.
 */
public final class FileObjectTarget implements ObjectTarget {

    /** Part of every temporary file name; keys containing it are rejected. */
    public static final String TEMP_MARKER = ".tidemark-tmp-";

    private static final Logger log = LoggerFactory.getLogger(FileObjectTarget.class);

    /**
     * Deferred objects held before a put flushes them itself: bounds the batch (256 MiB of 256 KiB
     * chunks, on disk, not in memory; twice that while one flush runs and other puts go on) and the
     * temporary files a crash may leave. The larger the
     * batch, the fewer directory fsyncs per object (a batch fsyncs each of its directories once).
     */
    static final int MAX_DEFERRED = 1024;

    /**
     * A name whose inode changed (was linked) less than this long ago may have been linked by
     * another writer that has not fsynced its directory yet; a flush fsyncs the directory of such a
     * name this client relied on. Much longer than any file system's periodic commit (ext4 5 s,
     * XFS and btrfs 30 s), after which a link is on disk whether or not its writer fsynced.
     */
    static final Duration RECENT_LINK = Duration.ofMinutes(10);

    /** Threads that fsync deferred objects: concurrent fsyncs share the file system's journal commits. */
    private static final ExecutorService SYNC =
            Executors.newFixedThreadPool(16, DaemonThreads.named("file-target-sync"));

    /**
     * Threads that fsync a barrier's directories, apart from {@link #SYNC} so that a barrier does
     * not wait behind the fsyncs of the next batch's objects.
     */
    private static final ExecutorService DIR_SYNC =
            Executors.newFixedThreadPool(16, DaemonThreads.named("file-target-dir-sync"));

    private final Path root;
    private final FileSync sync;
    /** How the barrier makes a batch durable: an fsync per object and directory, or syncfs (ADR 25). */
    private final Durability durability;
    /** {@code syncfs(2)} in {@link Durability#FILESYSTEM} mode. */
    private final FileSystemSync fileSystemSync;
    /**
     * The file system of {@link #root} opened for {@code syncfs} ({@link Durability#FILESYSTEM}
     * only): opened before the first deferred write and kept open for the life of this target, so
     * that its {@code syncfs} reports every writeback error since then (closed when the target is
     * unreachable).
     */
    private final FileSystemHolder fileSystem = new FileSystemHolder();
    /** Key → its temporary file, written, its fsync started, not yet linked (see {@link #putIfAbsentDeferred}). */
    private final Map<String, Pending> deferred = new ConcurrentHashMap<>();
    /** Directories holding a recently linked name of another writer that this client relied on. */
    private final Set<Path> unsyncedDirs = ConcurrentHashMap.newKeySet();
    /** Directories known to exist (created or seen): a put skips looking them up again. */
    private final Set<Path> knownDirs = ConcurrentHashMap.newKeySet();

    /** A deferred object: its temporary file and its fsync, started when it was written. */
    private record Pending(Path temp, CompletableFuture<Void> synced) {}

    private final ReentrantLock flushLock = new ReentrantLock();

    /**
     * Set when an fsync of deferred objects failed: their bytes may be lost (after a failed fsync
     * the kernel may report a later one as successful), they were dropped, and a backup that relied
     * on them may still be running; so every later deferred write and barrier of this instance fails
     * with it, until the process is restarted (as a database does after a failed fsync).
     */
    private volatile PermanentException failedBarrier;

    /**
     * A target on {@code root}. Does no I/O: a missing or unreadable root is reported by the first
     * operation.
     */
    public FileObjectTarget(Path root) {
        this(root, FileSync.SYSTEM);
    }

    /**
     * A target on {@code root} that makes its writes durable through {@code sync}: {@link
     * FileSync#SYSTEM} in production; a recording or failing one in crash-safety tests.
     */
    public FileObjectTarget(Path root, FileSync sync) {
        this(root, sync, FileSystemSync.SYSTEM, Durability.PER_FILE);
    }

    /**
     * A target on {@code root} with the given durability ({@code durability:} of a directory
     * target); {@link Durability#FILESYSTEM} only for a repository on a file system of its own (ADR
     * 26).
     */
    public FileObjectTarget(Path root, Durability durability) {
        this(root, FileSync.SYSTEM, FileSystemSync.SYSTEM, durability);
    }

    /**
     * A target on {@code root} that makes its writes durable through {@code sync} and, in {@link
     * Durability#FILESYSTEM} mode, its barriers through {@code fileSystemSync}: the {@code SYSTEM}
     * ones in production; recording or failing ones in crash-safety tests.
     */
    public FileObjectTarget(Path root, FileSync sync, FileSystemSync fileSystemSync, Durability durability) {
        this.root = root.toAbsolutePath().normalize();
        this.sync = sync;
        this.fileSystemSync = fileSystemSync;
        this.durability = durability == null ? Durability.PER_FILE : durability;
        if (this.durability == Durability.FILESYSTEM) {
            CLEANER.register(this, fileSystem::close);
        }
    }

    /** How this target makes its barriers durable. */
    public Durability durability() {
        return durability;
    }

    /** The root directory. */
    public Path root() {
        return root;
    }

    @Override
    public String describe() {
        return "file://" + root;
    }

    /**
     * Writes a temporary file next to the destination, fsyncs it, and hard-links it to the final
     * name, then removes the temporary name and fsyncs the directory.
     *
     * <p>Why a hard link: {@code link(2)} never replaces an existing name and is atomic on local
     * file systems and on NFS (a single LINK call on the server), so exactly one of several
     * concurrent writers wins and no reader ever sees a partly written file. The alternatives are
     * weaker: {@code rename}/{@code Files.move(ATOMIC_MOVE)} silently overwrites, so it needs a
     * separate existence check that races with other writers; opening the final name with {@code
     * CREATE_NEW} is exclusive but exposes a partial file while the bytes are written and leaves a
     * truncated object after a crash. Because NFS may replay a LINK whose reply was lost and then
     * report "exists" for our own link, an "exists" answer is confirmed by checking whether the
     * final name is the same file as our temporary one.
     */
    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        Path target = resolve(key);
        Path dir = target.getParent();
        createDirectories(dir, key);
        if (isObject(target)) {
            return false; // fast path for duplicate chunks: no temporary file, no fsync
        }
        Path temp = tempFor(target);
        boolean created;
        try {
            write(temp, data);
            sync.file(temp);
            created = link(target, temp);
        } catch (IOException e) {
            throw translate("write object " + key + " to", temp, e);
        } finally {
            deleteTemp(temp);
        }
        fsyncDirectory(dir, key); // ours, or another writer's that may not be durable yet
        return created;
    }

    /**
     * Writes the bytes to a temporary file next to the destination, starts its fsync on a
     * background thread and returns; the object reaches its final name only in {@link #flush()},
     * after its bytes are durable, so no other client (nor this one after a crash) ever sees a final
     * name whose bytes may be lost. This client sees it at once. A put that finds {@value
     * #MAX_DEFERRED} objects waiting flushes them itself unless another put is flushing already,
     * which bounds the batch (at twice that while a flush runs; see {@link #flushIfFull}).
     */
    @Override
    public boolean putIfAbsentDeferred(String key, byte[] data) {
        requireNoFailedBarrier();
        Path target = resolve(key);
        Path dir = target.getParent();
        if (deferred.containsKey(key)) {
            return false;
        }
        createDirectories(dir, key, durability == Durability.PER_FILE);
        if (isObject(target)) {
            return false;
        }
        if (durability == Durability.FILESYSTEM) {
            openFileSystem(); // before the write: its syncfs then reports a writeback error of it
        }
        Path temp = tempFor(target);
        try {
            writeCreatingDirectory(temp, data, key);
        } catch (IOException e) {
            deleteTemp(temp);
            throw translate("write object " + key + " to", temp, e);
        }
        boolean perFile = durability == Durability.PER_FILE;
        Pending pending = new Pending(temp, perFile ? new CompletableFuture<>() : SYNCED_AT_BARRIER);
        if (deferred.putIfAbsent(key, pending) != null) {
            deleteTemp(temp); // another thread stored the same object meanwhile
            return false;
        }
        if (!perFile) {
            flushIfFull();
            return true; // its bytes are made durable by the barrier's first syncfs
        }
        SYNC.execute(() -> {
            try {
                sync.file(temp);
                pending.synced().complete(null);
            } catch (IOException e) {
                pending.synced().completeExceptionally(translate("fsync object " + key + " in", temp, e));
            } catch (RuntimeException e) {
                pending.synced().completeExceptionally(e);
            }
        });
        flushIfFull();
        return true;
    }

    /**
     * Bounds the batch: the put that finds {@value #MAX_DEFERRED} objects waiting flushes them. A put
     * that finds them while another thread is already flushing goes on (that flush takes the batch it
     * found; this object waits for the next), so the other writers do not stall behind one barrier;
     * only at twice the bound, when flushes do not keep up, does a put wait for the flush and run
     * the next one itself.
     */
    private void flushIfFull() {
        int waiting = deferred.size();
        if (waiting < MAX_DEFERRED) {
            return;
        }
        if (waiting < 2 * MAX_DEFERRED && flushLock.isLocked()) {
            return;
        }
        flush();
    }

    /** Writes {@code temp}; if its directory vanished since it was known to exist, creates it again once. */
    private void writeCreatingDirectory(Path temp, byte[] data, String key) throws IOException {
        try {
            write(temp, data);
        } catch (NoSuchFileException e) {
            knownDirs.remove(temp.getParent());
            createDirectories(temp.getParent(), key, durability == Durability.PER_FILE);
            write(temp, data);
        }
    }

    /**
     * The barrier (ADR 21): makes the deferred objects durable and visible. Waits for the fsyncs of
     * their temporary files (started when each was written), hard-links each to its final name,
     * removes the temporary names, and fsyncs each changed directory once, together with the
     * directories of recently linked names of other writers this client relied on; returns only
     * when all of that is durable. On failure the caller writes no manifest, and:
     *
     * <ul>
     *   <li>a failed fsync of an object drops the whole batch (no object of it is linked, its
     *       temporary files are removed) and fails this and every later deferred write and barrier
     *       of this instance with a {@link PermanentException} (see {@link #failedBarrier});
     *   <li>a failed link or directory fsync keeps what is not done yet (objects whose bytes are
     *       durable stay pending, directories stay to be fsynced), so a retried flush finishes it.
     * </ul>
     */
    @Override
    public void flush() {
        requireNoFailedBarrier();
        flushLock.lock();
        try {
            requireNoFailedBarrier();
            List<Map.Entry<String, Pending>> batch = new ArrayList<>(deferred.entrySet());
            Set<Path> dirs = new HashSet<>();
            for (Path d : unsyncedDirs) {
                unsyncedDirs.remove(d);
                dirs.add(d);
            }
            if (batch.isEmpty() && dirs.isEmpty()) {
                return;
            }
            if (durability == Durability.FILESYSTEM) {
                flushFileSystem(batch, dirs);
                return;
            }
            List<Future<?>> syncs = new ArrayList<>(batch.size());
            for (Map.Entry<String, Pending> e : batch) {
                syncs.add(e.getValue().synced());
            }
            try {
                awaitAll(syncs);
            } catch (TidemarkException e) {
                if (Thread.currentThread().isInterrupted()) {
                    throw e; // the caller gave up waiting; the fsyncs go on and the batch stays pending
                }
                failedBarrier = new PermanentException(
                        "an fsync of objects written to " + describe() + " failed, so bytes this process wrote may be"
                                + " lost; it makes no restore point until it is restarted (" + e.getMessage()
                                + "). Check the kernel log and the disk, then restart it; the interrupted backups"
                                + " are retried",
                        e);
                drop(batch);
                throw failedBarrier;
            }
            try {
                link(batch, dirs);
                List<Future<?>> dirSyncs = new ArrayList<>(dirs.size());
                for (Path d : dirs) {
                    dirSyncs.add(DIR_SYNC.submit(() -> {
                        fsyncDirectory(d, d.toString());
                        return null;
                    }));
                }
                awaitAll(dirSyncs);
            } catch (TidemarkException e) {
                unsyncedDirs.addAll(dirs); // still to be made durable before any later manifest
                throw e;
            }
        } finally {
            flushLock.unlock();
        }
    }

    /**
     * The barrier in {@link Durability#FILESYSTEM} mode (ADR 25): one {@code syncfs} (the bytes of
     * every temporary file of the batch durable), the links, one more {@code syncfs} (their directory
     * entries durable, and those of other writers' names this client relied on). A failed {@code
     * syncfs} may have dropped dirty pages that a later one would not report, so either failure takes
     * this target out of service until restart, as a failed object fsync does (ADR 21 §4); the first
     * one also drops the batch, so no name of it appears. A failed link keeps the rest pending.
     */
    private void flushFileSystem(List<Map.Entry<String, Pending>> batch, Set<Path> dirs) {
        FileSystemSync.Handle fs;
        try {
            fs = openFileSystem();
        } catch (TidemarkException e) {
            unsyncedDirs.addAll(dirs);
            throw e;
        }
        try {
            fs.sync();
        } catch (IOException e) {
            drop(batch);
            throw failFileSystem("before linking " + batch.size() + " objects", e);
        }
        try {
            link(batch, dirs);
        } catch (TidemarkException e) {
            unsyncedDirs.addAll(dirs); // the next barrier's syncfs makes the links made so far durable
            throw e;
        }
        try {
            fs.sync();
        } catch (IOException e) {
            throw failFileSystem("after linking " + batch.size() + " objects", e);
        }
    }

    /**
     * Links each object of {@code batch} to its name (put-if-absent), removes its temporary name and
     * its pending entry, and adds its directory to {@code dirs}; stops at the first failed link,
     * leaving that object and the rest pending.
     */
    private void link(List<Map.Entry<String, Pending>> batch, Set<Path> dirs) {
        for (Map.Entry<String, Pending> e : batch) {
            Path target = resolve(e.getKey());
            try {
                link(target, e.getValue().temp());
            } catch (IOException ex) {
                throw translate(
                        "write object " + e.getKey() + " to", e.getValue().temp(), ex);
            }
            dirs.add(target.getParent());
            deleteTemp(e.getValue().temp());
            deferred.remove(e.getKey(), e.getValue());
        }
    }

    /** Forgets {@code batch} after a failed barrier: its temporary files removed, none of it linked. */
    private void drop(List<Map.Entry<String, Pending>> batch) {
        for (Map.Entry<String, Pending> p : batch) {
            deleteTemp(p.getValue().temp());
            deferred.remove(p.getKey(), p.getValue());
        }
    }

    /** Records and returns the failure of a barrier's syncfs; see {@link #failedBarrier}. */
    private PermanentException failFileSystem(String when, IOException e) {
        failedBarrier = new PermanentException(
                "syncfs of the file system holding " + describe() + " failed " + when + " ("
                        + translate("make objects durable in", root, e).getMessage()
                        + "), so bytes this process wrote may be lost; it makes no restore point until it is"
                        + " restarted. Check the kernel log and the disk of that file system (durability:"
                        + " filesystem), then restart it; the interrupted backups are retried",
                e);
        return failedBarrier;
    }

    /** The file system of the root, opened for {@code syncfs} once ({@link Durability#FILESYSTEM}). */
    private FileSystemSync.Handle openFileSystem() {
        try {
            return fileSystem.open(() -> fileSystemSync.open(root));
        } catch (IOException e) {
            throw translate("open the file system for syncfs of", root, e);
        }
    }

    /** The object of an open file system, apart from the target so that the cleaner can close it. */
    private static final class FileSystemHolder {
        private FileSystemSync.Handle handle;

        interface Opener {
            FileSystemSync.Handle open() throws IOException;
        }

        synchronized FileSystemSync.Handle open(Opener opener) throws IOException {
            if (handle == null) {
                handle = opener.open();
            }
            return handle;
        }

        synchronized void close() {
            if (handle != null) {
                try {
                    handle.close();
                } catch (IOException e) {
                    log.debug("closing {} failed: {}", handle, e.getMessage());
                }
                handle = null;
            }
        }
    }

    /** Closes the file systems opened for syncfs by targets no longer used. */
    private static final java.lang.ref.Cleaner CLEANER =
            java.lang.ref.Cleaner.create(DaemonThreads.named("file-target-cleaner"));

    /** The pending state of a deferred object in {@link Durability#FILESYSTEM} mode: no fsync of its own. */
    private static final CompletableFuture<Void> SYNCED_AT_BARRIER = CompletableFuture.completedFuture(null);

    private void requireNoFailedBarrier() {
        PermanentException failed = failedBarrier;
        if (failed != null) {
            throw new PermanentException(failed.getMessage(), failed);
        }
    }

    private static void awaitAll(List<Future<?>> futures) {
        TidemarkException first = null;
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (first == null) {
                    first = e.getCause() instanceof TidemarkException te
                            ? te
                            : new RetriableException("fsync failed: " + e.getCause(), e.getCause());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while making objects durable", e);
            }
        }
        if (first != null) {
            throw first;
        }
    }

    @Override
    public Optional<byte[]> get(String key) {
        Path path = resolve(key);
        try {
            return Optional.of(Files.readAllBytes(path));
        } catch (NoSuchFileException e) {
            Pending pending = deferred.get(key);
            Path temp = pending == null ? null : pending.temp();
            if (temp != null) {
                try {
                    return Optional.of(Files.readAllBytes(temp));
                } catch (IOException gone) {
                    return get(key); // flushed meanwhile: it has its final name now
                }
            }
            requireRoot();
            return Optional.empty();
        } catch (IOException e) {
            if (Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
                return Optional.empty(); // a "directory" of other keys, not an object
            }
            throw translate("read object " + key + " from", path, e);
        }
    }

    /** Reads the object's file straight into {@code into}; see {@link ObjectTarget#read}. */
    @Override
    public int read(String key, byte[] into) {
        Path path = resolve(key);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size > into.length) {
                return (int) Math.min(size, Integer.MAX_VALUE);
            }
            ByteBuffer buf = ByteBuffer.wrap(into, 0, (int) size);
            while (buf.hasRemaining() && channel.read(buf, buf.position()) >= 0) {
                // positional reads until the whole object is in
            }
            return buf.position();
        } catch (NoSuchFileException e) {
            return ObjectTarget.super.read(key, into); // a deferred object, or none
        } catch (IOException e) {
            if (Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
                return -1; // a "directory" of other keys, not an object
            }
            throw translate("read object " + key + " from", path, e);
        }
    }

    @Override
    public boolean exists(String key) {
        Path path = resolve(key);
        try {
            return objectAttributes(path);
        } catch (NoSuchFileException e) {
            if (deferred.containsKey(key)) {
                return true;
            }
            requireRoot();
            return false;
        } catch (IOException e) {
            throw translate("look up object " + key + " in", path, e);
        }
    }

    /** {@link #objectAttributes}, false for a missing name. */
    private boolean isObject(Path path) {
        try {
            return objectAttributes(path);
        } catch (NoSuchFileException e) {
            return false;
        } catch (IOException e) {
            throw translate("look up object " + toKey(path) + " in", path, e);
        }
    }

    /**
     * Whether {@code path} is an object (a regular file); a recently linked one has its directory
     * fsynced by the next {@link #flush()} before this client relies on it in a manifest.
     */
    private boolean objectAttributes(Path path) throws IOException {
        if (UNIX_VIEW) {
            Map<String, Object> attrs =
                    Files.readAttributes(path, "unix:isRegularFile,ctime", LinkOption.NOFOLLOW_LINKS);
            boolean file = Boolean.TRUE.equals(attrs.get("isRegularFile"));
            if (file && attrs.get("ctime") instanceof FileTime ctime && recentlyLinked(ctime)) {
                unsyncedDirs.add(path.getParent());
            }
            return file;
        }
        BasicFileAttributes attrs = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (attrs.isRegularFile() && recentlyLinked(attrs.lastModifiedTime())) {
            unsyncedDirs.add(path.getParent()); // no ctime here: the write time is the nearest
        }
        return attrs.isRegularFile();
    }

    /** Whether the platform gives a file's ctime (the time of its last link) through the "unix" view. */
    private static final boolean UNIX_VIEW =
            java.nio.file.FileSystems.getDefault().supportedFileAttributeViews().contains("unix");

    /**
     * A name changed less than {@link #RECENT_LINK} ago (or, by another machine's clock, in the
     * future): not yet known to be durable. Names this client linked itself were fsynced with
     * their directory already, but cannot be told apart cheaply; fsyncing such a directory again
     * costs one fsync per directory and flush.
     */
    private static boolean recentlyLinked(FileTime changed) {
        return changed.toMillis() > System.currentTimeMillis() - RECENT_LINK.toMillis();
    }

    @Override
    public List<String> list(String prefix) {
        checkPrefix(prefix);
        requireRoot();
        int lastSlash = prefix.lastIndexOf('/');
        Path start = lastSlash < 0 ? root : root.resolve(prefix.substring(0, lastSlash));
        if (!start.equals(root) && !Files.isDirectory(start, LinkOption.NOFOLLOW_LINKS)) {
            return List.of();
        }
        List<String> keys = new ArrayList<>();
        try {
            Files.walkFileTree(start, walkOptions(), Integer.MAX_VALUE, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
                    if (dir.equals(start)) {
                        return FileVisitResult.CONTINUE;
                    }
                    String dirKey = toKey(dir) + "/";
                    boolean relevant = dirKey.startsWith(prefix) || prefix.startsWith(dirKey);
                    return relevant ? FileVisitResult.CONTINUE : FileVisitResult.SKIP_SUBTREE;
                }

                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                    if (attrs.isRegularFile() && !file.getFileName().toString().contains(TEMP_MARKER)) {
                        String key = toKey(file);
                        if (key.startsWith(prefix)) {
                            keys.add(key);
                        }
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                    if (e instanceof NoSuchFileException) {
                        return FileVisitResult.CONTINUE; // deleted while we walked
                    }
                    throw e;
                }
            });
        } catch (IOException e) {
            Path where = e instanceof FileSystemException fse && fse.getFile() != null ? Path.of(fse.getFile()) : start;
            throw translate("list objects with prefix '" + prefix + "' in", where, e);
        }
        Collections.sort(keys);
        return keys;
    }

    @Override
    public void delete(String key) {
        Path path = resolve(key);
        try {
            if (Files.deleteIfExists(path)) {
                fsyncDirectory(path.getParent(), key);
            } else {
                requireRoot();
            }
        } catch (IOException e) {
            throw translate("delete object " + key + " from", path, e);
        }
    }

    /** Nothing to release; the target stays usable. */
    @Override
    public void close() {
        // no resources are held between calls
    }

    @Override
    public String toString() {
        return describe();
    }

    private Path resolve(String key) {
        checkKey(key);
        return root.resolve(key);
    }

    private void checkKey(String key) {
        TargetKeys.check(key, describe());
        if (key.contains(TEMP_MARKER)) {
            throw badKey(key, "it contains '" + TEMP_MARKER + "', which marks temporary files");
        }
    }

    private void checkPrefix(String prefix) {
        if (prefix == null) {
            throw new PermanentException("null list prefix for " + describe() + " (a bug in the caller)");
        }
        if (prefix.startsWith("/")) {
            throw badKey(prefix, "it is absolute; prefixes are relative to the target's root");
        }
        int lastSlash = prefix.lastIndexOf('/');
        if (lastSlash >= 0) {
            for (String segment : prefix.substring(0, lastSlash).split("/", -1)) {
                checkSegment(prefix, segment);
            }
        }
        if (prefix.indexOf('\0') >= 0) {
            throw badKey(prefix, "it contains a NUL character");
        }
    }

    private void checkSegment(String key, String segment) {
        if (segment.isEmpty()) {
            throw badKey(key, "it has an empty segment (a leading, trailing or doubled '/')");
        }
        if (segment.equals(".") || segment.equals("..")) {
            throw badKey(key, "it has a '" + segment + "' segment, which could escape the target's root");
        }
        if (segment.indexOf('\0') >= 0) {
            throw badKey(key, "it contains a NUL character");
        }
        if (segment.contains(TEMP_MARKER)) {
            throw badKey(key, "it contains '" + TEMP_MARKER + "', which marks temporary files");
        }
    }

    private PermanentException badKey(String key, String why) {
        return TargetKeys.invalid(key, describe(), why);
    }

    /** A root that is a symbolic link is walked through (below it, the repository has no links). */
    private java.util.Set<java.nio.file.FileVisitOption> walkOptions() {
        return Files.isSymbolicLink(root)
                ? java.util.EnumSet.of(java.nio.file.FileVisitOption.FOLLOW_LINKS)
                : java.util.EnumSet.noneOf(java.nio.file.FileVisitOption.class);
    }

    private String toKey(Path path) {
        Path relative = root.relativize(path);
        StringBuilder key = new StringBuilder();
        for (Path name : relative) {
            if (key.length() > 0) {
                key.append('/');
            }
            key.append(name);
        }
        return key.toString();
    }

    private void requireRoot() {
        if (!Files.isDirectory(root)) {
            throw new PermanentException("repository directory " + root
                    + " does not exist or is not a directory: create it, mount the file system, or fix the"
                    + " configured path");
        }
    }

    /** Creates the missing directories between the root and {@code dir}, fsyncing each new entry. */
    private void createDirectories(Path dir, String key) {
        createDirectories(dir, key, true);
    }

    /**
     * Creates the missing directories between the root and {@code dir}; fsyncs each new entry unless
     * {@code fsyncEntries} is false (a deferred write in {@link Durability#FILESYSTEM} mode, whose
     * barrier's second syncfs makes them durable before any manifest relies on them).
     */
    private void createDirectories(Path dir, String key, boolean fsyncEntries) {
        requireRoot();
        // the root may be a symbolic link (a repository directory on another mount): only the
        // directories below it must be real ones
        if (dir.equals(root) || knownDirs.contains(dir)) {
            return;
        }
        if (Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            knownDirs.add(dir);
            return;
        }
        Path current = root;
        for (Path name : root.relativize(dir)) {
            Path next = current.resolve(name);
            try {
                Files.createDirectory(next);
                if (fsyncEntries) {
                    fsyncDirectory(current, key);
                }
            } catch (FileAlreadyExistsException e) {
                if (!Files.isDirectory(next, LinkOption.NOFOLLOW_LINKS)) {
                    throw new PermanentException("cannot store object " + key + " in " + describe() + ": " + next
                            + " is an object, not a directory (two keys where one is a prefix of the other"
                            + " followed by '/')");
                }
            } catch (IOException e) {
                throw translate("create directory for object " + key + " in", next, e);
            }
            current = next;
        }
        knownDirs.add(dir);
    }

    /**
     * {@code <name>.tidemark-tmp-<pid>.<start>@<machine>-<random>}: the process and machine parts
     * tell leftovers from live writes, also in a directory several hosts share over NFS (where a pid
     * means nothing to another machine).
     */
    private static Path tempFor(Path target) {
        return target.getParent()
                .resolve(target.getFileName()
                        + TEMP_MARKER
                        + HostScratch.processPart()
                        + MACHINE_SEPARATOR
                        + MACHINE
                        + "-"
                        + Long.toHexString(ThreadLocalRandom.current().nextLong()));
    }

    private static final char MACHINE_SEPARATOR = '@';

    /**
     * This machine (kernel boot) as a temporary file names it: the host name and the kernel's boot
     * id, so two machines of one name, or two containers on one kernel with their own pid spaces,
     * differ. Letters, digits and {@code _} only.
     */
    static final String MACHINE = machine();

    private static String machine() {
        String host = firstLine(Path.of("/proc/sys/kernel/hostname"))
                .or(() -> Optional.ofNullable(System.getenv("HOSTNAME")))
                .orElse("host");
        String boot = firstLine(Path.of("/proc/sys/kernel/random/boot_id")).orElse("");
        String name = host.replaceAll("[^A-Za-z0-9]", "_");
        name = name.substring(0, Math.min(name.length(), 32));
        return boot.isEmpty() ? name : name + "_" + boot.replace("-", "").substring(0, Math.min(8, boot.length()));
    }

    private static Optional<String> firstLine(Path file) {
        try {
            String text = Files.readString(file).strip();
            return text.isEmpty() ? Optional.empty() : Optional.of(text);
        } catch (IOException | RuntimeException e) { // not Linux, or not readable: the other source
            return Optional.empty();
        }
    }

    /** Temporary files without a process part (written before they had one) older than this are leftovers. */
    static final Duration UNTAGGED_TEMP_AGE = Duration.ofHours(1);

    /**
     * Temporary files of another machine (a directory shared over NFS) older than this are
     * leftovers: longer than any write lasts, deferred chunk writes of a whole job included (a job
     * ends within its deadline, 30 min by default). Younger ones may be another host's write in
     * flight and are never touched.
     */
    static final Duration FOREIGN_TEMP_AGE = Duration.ofHours(24);

    /**
     * Removes the temporary files that writers killed mid-write left (they are never listed or read,
     * but take space): those of this machine's processes that are gone, those of other machines (a
     * directory shared over NFS) older than {@link #FOREIGN_TEMP_AGE}, and untagged ones older than
     * {@link #UNTAGGED_TEMP_AGE}. Temporary files of live processes (another engine or command
     * writing now, on this host or another) are kept. For start-up; a file that cannot be removed is
     * logged and skipped.
     *
     * @return how many files were removed
     */
    public int removeLeftoverTemporaries() {
        java.util.concurrent.atomic.AtomicInteger removed = new java.util.concurrent.atomic.AtomicInteger();
        long untaggedBefore = System.currentTimeMillis() - UNTAGGED_TEMP_AGE.toMillis();
        long foreignBefore = System.currentTimeMillis() - FOREIGN_TEMP_AGE.toMillis();
        try {
            Files.walkFileTree(root, walkOptions(), Integer.MAX_VALUE, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                    String name = file.getFileName().toString();
                    int at = name.indexOf(TEMP_MARKER);
                    if (at < 0 || !attrs.isRegularFile()) {
                        return FileVisitResult.CONTINUE;
                    }
                    String suffix = name.substring(at + TEMP_MARKER.length());
                    int dash = suffix.lastIndexOf('-');
                    boolean leftover;
                    if (dash <= 0) {
                        leftover = attrs.lastModifiedTime().toMillis() < untaggedBefore;
                    } else {
                        String writer = suffix.substring(0, dash);
                        int sep = writer.indexOf(MACHINE_SEPARATOR);
                        // without a machine part: written by an engine of one host, before there were shared primaries
                        leftover = sep < 0 || writer.substring(sep + 1).equals(MACHINE)
                                ? HostScratch.processGone(sep < 0 ? writer : writer.substring(0, sep))
                                : attrs.lastModifiedTime().toMillis() < foreignBefore;
                    }
                    if (leftover) {
                        try {
                            Files.deleteIfExists(file);
                            removed.incrementAndGet();
                        } catch (IOException e) {
                            log.warn("cannot remove the leftover temporary file {}: {}", file, e.getMessage());
                        }
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path file, IOException e) {
                    return FileVisitResult.CONTINUE; // deleted meanwhile, or unreadable: not ours to judge
                }
            });
        } catch (IOException e) {
            log.warn("cannot look for leftover temporary files in {}: {}", root, e.getMessage());
        }
        return removed.get();
    }

    private static void write(Path temp, byte[] data) throws IOException {
        try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer buffer = ByteBuffer.wrap(data);
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
        }
    }

    /** Links {@code temp} to {@code target}; false if another object already holds the name. */
    private static boolean link(Path target, Path temp) throws IOException {
        try {
            Files.createLink(target, temp);
            return true;
        } catch (FileAlreadyExistsException e) {
            return Files.isSameFile(target, temp); // NFS replayed our own LINK
        } catch (UnsupportedOperationException e) {
            throw new PermanentException(
                    "the file system holding " + target.getParent()
                            + " does not support hard links, which Tidemark needs for atomic writes: use a local"
                            + " file system or NFS",
                    e);
        }
    }

    private static void deleteTemp(Path temp) {
        try {
            Files.deleteIfExists(temp);
        } catch (IOException e) {
            // Not fatal: temporary files are invisible to readers. Logged, not rethrown.
            log.warn(
                    "could not remove temporary file {} ({}); it is ignored and may be deleted by hand",
                    temp,
                    e.toString());
        }
    }

    private void fsyncDirectory(Path dir, String key) {
        try {
            sync.directory(dir);
        } catch (IOException e) {
            throw translate("fsync directory for object " + key + " in", dir, e);
        }
    }

    private TidemarkException translate(String action, Path path, IOException e) {
        String what = "could not " + action + " " + describe() + " (" + path + ")";
        if (e instanceof AccessDeniedException) {
            return new PermanentException(
                    what + ": permission denied. Give the user running Tidemark read and"
                            + " write access to " + root + " (owner, mode, ACLs; on NFS also the export's root_squash"
                            + " and uid mapping)",
                    e);
        }
        if (e instanceof NotDirectoryException) {
            return new PermanentException(what + ": a path component is an object, not a directory", e);
        }
        String reason = reason(e);
        if (reason.contains("no space left on device") || reason.contains("disk quota exceeded")) {
            return new PermanentException(
                    what + ": the file system is full or the quota is used up. Free space"
                            + " (run garbage collection or prune old restore points) or grow the volume holding " + root
                            + ", then retry",
                    e);
        }
        if (reason.contains("read-only file system")) {
            return new PermanentException(
                    what + ": the file system is mounted read-only. Remount it"
                            + " read-write (check the kernel log for I/O errors first)",
                    e);
        }
        if (reason.contains("operation not permitted")) {
            return new PermanentException(
                    what + ": operation not permitted. Check that the file system"
                            + " supports hard links and that Tidemark may write to " + root,
                    e);
        }
        return new RetriableException(what + ": " + e, e);
    }

    private static String reason(IOException e) {
        String reason = e instanceof FileSystemException fse && fse.getReason() != null
                ? fse.getReason()
                : String.valueOf(e.getMessage());
        return reason.toLowerCase(Locale.ROOT);
    }
}
