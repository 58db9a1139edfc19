package io.tidemark.core.hypervisor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What captures leave on the host while they run — scratch images and NBD sockets in the work
 * directory, and in QEMU block nodes, block jobs and NBD exports — is named with a <em>tag</em>
 * {@code <pid>.<start>.<n>} (base 36: the creating process's id, its start time in seconds, and a
 * sequence number). A later process tells leftovers from the things of a live capture by the tag
 * alone: a thing is a leftover when its process is gone (no process with that id started at that
 * second), or when it is this process's and no capture holds the tag any more (its teardown failed,
 * or the adapter was closed under it). Names from before tags existed carry none and count as
 * leftovers: the process that made them was an older engine, which no longer runs.
 *
 * <p>{@link #removeLeftovers} is the start-up cleanup of a work root.
 */
public final class HostScratch {

    private static final Logger log = LoggerFactory.getLogger(HostScratch.class);

    /** A tag inside a name: three base-36 numbers joined by dots. */
    private static final Pattern TAG = Pattern.compile("([0-9a-z]+)\\.([0-9a-z]+)\\.([0-9a-z]+)");

    /** Scratch files of captures from before tags existed. */
    private static final Pattern UNTAGGED = Pattern.compile("fleece-.*\\.qcow2|tm-scratch-.*\\.qcow2|nbd\\.sock");

    /** Tagged scratch files: QMP's fleece images, libvirt's scratch images, NBD sockets. */
    private static final Pattern TAGGED = Pattern.compile("(fleece|tm-scratch|nbd)-.*");

    /** The prefix of private socket directories under {@code java.io.tmpdir}. */
    public static final String SOCKET_DIR_PREFIX = "tm-nbd-";

    /** A work directory that is empty and older than this many minutes is removed at start-up too. */
    static final long EMPTY_DIR_MINUTES = 10;

    private static final String PROCESS = currentProcessPart();
    private static final AtomicLong SEQUENCE = new AtomicLong();
    private static final Set<String> HELD = ConcurrentHashMap.newKeySet();

    private HostScratch() {}

    private static String currentProcessPart() {
        ProcessHandle self = ProcessHandle.current();
        long start = self.info().startInstant().map(Instant::getEpochSecond).orElse(0L);
        return Long.toString(self.pid(), 36) + "." + Long.toString(start, 36);
    }

    /**
     * This process's identity in tags, {@code <pid>.<start second>} in base 36: what other scratch
     * (e.g. a file target's temporary files) carries so that leftovers of dead processes are known.
     */
    public static String processPart() {
        return PROCESS;
    }

    /**
     * Whether the process a {@link #processPart()} names is gone (no process with that pid started
     * at that second: pid reuse is not mistaken for it). A malformed part counts as gone.
     */
    public static boolean processGone(String processPart) {
        int dot = processPart.indexOf('.');
        if (dot <= 0) {
            return true;
        }
        return !alive(processPart.substring(0, dot), processPart.substring(dot + 1));
    }

    /** A fresh tag of this process, held until {@link #release}. */
    public static String newTag() {
        String tag = PROCESS + "." + Long.toString(SEQUENCE.incrementAndGet(), 36);
        HELD.add(tag);
        return tag;
    }

    /** The capture that held {@code tag} is over (or abandoned): what carries it is now a leftover. */
    public static void release(String tag) {
        HELD.remove(tag);
    }

    /** The tag inside {@code name}, if it has one. */
    public static Optional<String> tagIn(String name) {
        Matcher m = TAG.matcher(name);
        return m.find() ? Optional.of(m.group()) : Optional.empty();
    }

    /**
     * Whether what {@code name} names was left by a capture that is over: its name carries the tag of
     * a process that is gone, or a tag of this process that no capture holds, or no tag at all.
     */
    public static boolean isLeftover(String name) {
        Optional<String> tag = tagIn(name);
        if (tag.isEmpty()) {
            return true;
        }
        Matcher m = TAG.matcher(tag.get());
        if (!m.matches()) {
            return true;
        }
        String process = m.group(1) + "." + m.group(2);
        if (process.equals(PROCESS)) {
            return !HELD.contains(tag.get());
        }
        return !alive(m.group(1), m.group(2));
    }

    private static boolean alive(String pid36, String start36) {
        long pid;
        long start;
        try {
            pid = Long.parseLong(pid36, 36);
            start = Long.parseLong(start36, 36);
        } catch (NumberFormatException e) {
            return false;
        }
        return ProcessHandle.of(pid)
                .filter(ProcessHandle::isAlive)
                .filter(p -> start == 0
                        || p.info()
                                .startInstant()
                                .map(i -> i.getEpochSecond() == start)
                                .orElse(true))
                .isPresent();
    }

    /**
     * The start-up cleanup: removes the scratch files that captures of processes now gone left in the
     * work directories under {@code workRoot} (one directory per job) and in private socket
     * directories under {@code java.io.tmpdir}, and then the directories they leave empty (and
     * empty work directories older than {@value #EMPTY_DIR_MINUTES} minutes). Files of live
     * captures, and files that are not capture scratch, are kept. A file that cannot be removed is
     * logged and skipped.
     *
     * @return what was removed
     */
    public static List<Path> removeLeftovers(Path workRoot, Clock clock) {
        List<Path> removed = new ArrayList<>();
        if (Files.isDirectory(workRoot)) {
            for (Path dir : list(workRoot)) {
                if (Files.isDirectory(dir)) {
                    sweep(dir, clock, removed);
                }
            }
        }
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        for (Path dir : list(tmp)) {
            String n = dir.getFileName().toString();
            if (n.startsWith(SOCKET_DIR_PREFIX) && Files.isDirectory(dir) && isLeftover(n)) {
                sweep(dir, clock, removed);
            }
        }
        if (!removed.isEmpty()) {
            log.info(
                    "removed {} scratch file(s) and directories left by interrupted captures: {}",
                    removed.size(),
                    removed);
        }
        return removed;
    }

    /**
     * Removes the empty job directories directly under {@code workRoot}, whatever their age: for the
     * start-up of the engine that owns the work root, before any job of it runs, when an empty one
     * can only be what a job killed before its first scratch file left. (Unlike {@link
     * #removeLeftovers}, which keeps fresh empty directories another process may be filling.)
     *
     * @return what was removed
     */
    public static List<Path> removeEmptyJobDirectories(Path workRoot) {
        List<Path> removed = new ArrayList<>();
        if (!Files.isDirectory(workRoot)) {
            return removed;
        }
        for (Path d : list(workRoot)) {
            if (Files.isDirectory(d) && list(d).isEmpty()) {
                delete(d, removed);
            }
        }
        return removed;
    }

    private static void sweep(Path dir, Clock clock, List<Path> removed) {
        int before = removed.size();
        for (Path f : list(dir)) {
            String n = f.getFileName().toString();
            boolean scratch = TAGGED.matcher(n).matches() && tagIn(n).isPresent()
                    || UNTAGGED.matcher(n).matches();
            if (scratch && !Files.isDirectory(f) && isLeftover(n)) {
                delete(f, removed);
            }
        }
        boolean old = modified(dir)
                .map(t -> t.plus(Duration.ofMinutes(EMPTY_DIR_MINUTES)).isBefore(clock.instant()))
                .orElse(false);
        if (list(dir).isEmpty() && (removed.size() > before || old)) {
            delete(dir, removed);
        }
    }

    private static Optional<Instant> modified(Path p) {
        try {
            return Optional.of(Files.getLastModifiedTime(p).toInstant());
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static List<Path> list(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted(Comparator.naturalOrder()).toList();
        } catch (IOException e) {
            log.warn("cannot list {} for leftover scratch files: {}", dir, e.toString());
            return List.of();
        }
    }

    private static void delete(Path p, List<Path> removed) {
        try {
            if (Files.deleteIfExists(p)) {
                removed.add(p);
            }
        } catch (IOException e) {
            log.warn("cannot remove the leftover {}: {}; remove it by hand", p, e.toString());
        }
    }
}
