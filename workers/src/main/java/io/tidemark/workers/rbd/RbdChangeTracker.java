package io.tidemark.workers.rbd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.workers.nbd.Extent;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tidemark's snapshots of RBD images and the extents changed between two of them (ADR 18), through
 * the {@code rbd} CLI with {@code --format json} (rados-java 0.6.0 has snapshots but no diff).
 *
 * <p>Contract: a snapshot taken at or before a capture's point in time, diffed against one taken at
 * or after the next point, covers every byte the guest changed in between ({@code rbd diff} lists
 * written, discarded and zeroed ranges alike). With a valid {@code fast-diff} object map the diff
 * reads only the object map and reports whole objects ({@link Changes#wholeObjects()}); without it
 * librbd lists every object's snapshots (one RADOS call per object), and reports the written ranges.
 *
 * <p>Errors: an unreachable or busy cluster is {@link RetriableException}; a missing pool or image,
 * or no permission, is {@link PermanentException}. A missing <em>base</em> snapshot is not an error:
 * {@link #changes} returns empty and the caller takes a full backup saying why.
 */
public final class RbdChangeTracker {

    /** What {@code rbd info} says about an image that matters here. */
    public record ImageInfo(long sizeBytes, long objectSize, Set<String> features, Set<String> flags) {
        /** Whether a diff can come from the object map alone: fast-diff enabled and not flagged invalid. */
        public boolean fastDiff() {
            return features.contains("fast-diff")
                    && !flags.contains("fast diff invalid")
                    && !flags.contains("object map invalid");
        }
    }

    /**
     * The changed extents between two snapshots, sorted and merged, each flagged {@link
     * Extent#DIRTY} as in a {@code qemu:dirty-bitmap:*} context.
     *
     * @param wholeObjects whether every extent is whole RBD objects (fast-diff), rather than the
     *     written ranges
     * @param objectSize the image's object size: the granularity when {@code wholeObjects}
     */
    public record Changes(List<Extent> extents, boolean wholeObjects, long objectSize) {
        public Changes {
            extents = List.copyOf(extents);
        }

        /** Bytes covered by the extents. */
        public long bytes() {
            return extents.stream().mapToLong(Extent::length).sum();
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern ERRNO = Pattern.compile("\\((\\d+)\\) ");
    private static final int ENOENT = 2;
    private static final int EEXIST = 17;
    private static final Set<Integer> RETRIABLE = Set.of(
            4, // EINTR
            5, // EIO
            11, // EAGAIN
            16, // EBUSY
            103, // ECONNABORTED
            104, // ECONNRESET
            108, // ESHUTDOWN
            110, // ETIMEDOUT
            111, // ECONNREFUSED
            113); // EHOSTUNREACH

    private final List<String> connection;
    private final Duration timeout;

    /**
     * @param connection the arguments that select the cluster and the client, e.g. {@code -c
     *     /etc/ceph/ceph.conf --id tidemark}; never a key on the command line (use a keyring)
     * @param timeout bounds each {@code rbd} call; the cluster connection itself gives up after a
     *     third of it ({@code client_mount_timeout}), so an unreachable cluster fails as retriable
     */
    public RbdChangeTracker(List<String> connection, Duration timeout) {
        this.connection = List.copyOf(connection);
        this.timeout = timeout;
    }

    /** A tracker for the cluster of {@code confFile} as client {@code id} (its keyring as the conf names it). */
    public static RbdChangeTracker of(Path confFile, String id, Duration timeout) {
        return new RbdChangeTracker(List.of("-c", confFile.toString(), "--id", id), timeout);
    }

    /** Size, object size, features and flags of {@code image}. */
    public ImageInfo info(RbdImage image) {
        JsonNode n = json(rbd(image, "info", image.spec()).stdout(), image, "info");
        return new ImageInfo(
                n.path("size").asLong(),
                n.path("object_size").asLong(),
                strings(n.path("features")),
                strings(n.path("flags")));
    }

    /** The names of every snapshot of {@code image} (Tidemark's and others'), oldest first. */
    public List<String> snapshots(RbdImage image) {
        JsonNode n = json(rbd(image, "snap", "ls", image.spec()).stdout(), image, "snap ls");
        List<String> names = new ArrayList<>();
        n.forEach(s -> names.add(s.path("name").asText()));
        return List.copyOf(names);
    }

    /**
     * Takes snapshot {@code name} of {@code image}. When a client holds the image's exclusive lock
     * (QEMU), librbd asks that client to take it, which flushes its cache and holds its writes for
     * the moment, so the snapshot holds every write acknowledged before the call.
     *
     * @throws PermanentException also when the snapshot exists already (a leftover: {@link
     *     #reconcile} first)
     */
    public void createSnapshot(RbdImage image, String name) {
        ExternalCommand.Result r = command(image, "snap", "create", "--no-progress", image.spec(name))
                .runForExit();
        if (r.exitCode() != 0) {
            if (errno(r) == EEXIST) {
                throw new PermanentException("RBD snapshot " + image.spec(name) + " exists already; it is a leftover"
                        + " of an interrupted capture and must be removed (reconcile) before a new one is taken");
            }
            throw error(image, "snap create", r);
        }
    }

    /**
     * Removes snapshot {@code name} of {@code image}; idempotent.
     *
     * @return false when there was no such snapshot
     */
    public boolean deleteSnapshot(RbdImage image, String name) {
        ExternalCommand.Result r =
                command(image, "snap", "rm", "--no-progress", image.spec(name)).runForExit();
        if (r.exitCode() == 0) {
            return true;
        }
        if (errno(r) == ENOENT && r.stderr().contains("failed to remove snapshot")) {
            return false;
        }
        throw error(image, "snap rm", r);
    }

    /**
     * Removes every snapshot of {@code image} whose name starts with {@code prefix} except {@code
     * keep}: what interrupted captures and failed removals left. Snapshots of other tools are left
     * alone.
     *
     * @return the names removed
     */
    public List<String> reconcile(RbdImage image, String prefix, Optional<String> keep) {
        List<String> removed = new ArrayList<>();
        for (String s : snapshots(image)) {
            if (s.startsWith(prefix) && !keep.filter(s::equals).isPresent()) {
                if (deleteSnapshot(image, s)) {
                    removed.add(s);
                }
            }
        }
        return List.copyOf(removed);
    }

    /**
     * The extents of {@code image} that differ between snapshot {@code from} and snapshot {@code
     * to}, or empty when {@code from} does not exist (removed by someone else, or the image was
     * replaced): the caller then reads the whole disk.
     *
     * @throws PermanentException when the image or {@code to} does not exist
     */
    public Optional<Changes> changes(RbdImage image, String from, String to) {
        ImageInfo info = info(image);
        List<String> snaps = snapshots(image);
        if (!snaps.contains(from)) {
            return Optional.empty();
        }
        if (!snaps.contains(to)) {
            throw new PermanentException("RBD snapshot " + image.spec(to) + " does not exist; it must be taken"
                    + " before the changes up to it can be listed");
        }
        boolean whole = info.fastDiff();
        List<String> args = new ArrayList<>(List.of("diff", "--from-snap", from, image.spec(to)));
        if (whole) {
            args.add("--whole-object");
        }
        ExternalCommand.Result r = command(image, args.toArray(String[]::new)).runForExit();
        if (r.exitCode() != 0) {
            if (errno(r) == ENOENT && r.stderr().contains("diff error")) {
                return Optional.empty(); // 'from' was removed since the listing above
            }
            throw error(image, "diff", r);
        }
        List<Extent> raw = new ArrayList<>();
        for (JsonNode e : json(r.stdout(), image, "diff")) {
            long length = e.path("length").asLong();
            if (length > 0) { // "exists": false is a discard or zeroing: changed as well
                raw.add(new Extent(e.path("offset").asLong(), length, Extent.DIRTY));
            }
        }
        return Optional.of(new Changes(merge(raw), whole, info.objectSize()));
    }

    static List<Extent> merge(List<Extent> extents) {
        List<Extent> sorted = new ArrayList<>(extents);
        sorted.sort(Comparator.comparingLong(Extent::offset));
        List<Extent> out = new ArrayList<>();
        for (Extent e : sorted) {
            if (!out.isEmpty() && out.get(out.size() - 1).end() >= e.offset()) {
                Extent last = out.remove(out.size() - 1);
                out.add(new Extent(last.offset(), Math.max(last.end(), e.end()) - last.offset(), Extent.DIRTY));
            } else {
                out.add(e);
            }
        }
        return out;
    }

    private ExternalCommand.Result rbd(RbdImage image, String... args) {
        ExternalCommand.Result r = command(image, args).runForExit();
        if (r.exitCode() != 0) {
            throw error(image, args[0] + (args[0].equals("snap") ? " " + args[1] : ""), r);
        }
        return r;
    }

    private ExternalCommand command(RbdImage image, String... args) {
        long mountSeconds = Math.max(1, timeout.toSeconds() / 3);
        // only the commands that print something take --format ('snap create' refuses it)
        boolean prints = !args[0].equals("snap") || args[1].equals("ls");
        return ExternalCommand.of("rbd")
                .args(connection)
                .args(List.of("--client-mount-timeout", Long.toString(mountSeconds)))
                .args(List.of(args))
                .args(prints ? List.of("--format", "json") : List.of())
                .timeout(timeout)
                .ifMissing("install ceph-common (the rbd CLI) on this host");
    }

    private static int errno(ExternalCommand.Result r) {
        Matcher m = ERRNO.matcher(r.stderr());
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }

    private RuntimeException error(RbdImage image, String what, ExternalCommand.Result r) {
        String out = r.stderr().strip();
        int errno = errno(r);
        String where = "rbd " + what + " of " + image.spec() + " failed (exit " + r.exitCode() + "): " + out;
        if (out.contains("couldn't connect to the cluster") || RETRIABLE.contains(errno)) {
            return new RetriableException(
                    where + "; the Ceph cluster is unreachable or busy, retry later (check the mons named in"
                            + " the ceph.conf and the network)");
        }
        if (errno == ENOENT) {
            return new PermanentException(where + "; pool '" + image.pool() + "' or image '" + image.name()
                    + "' does not exist: check the disk's RBD image name");
        }
        if (errno == 1 || errno == 13) {
            return new PermanentException(where + "; the client has no permission: give it 'profile rbd' caps"
                    + " on pool '" + image.pool() + "'");
        }
        return new PermanentException(where);
    }

    private static JsonNode json(String text, RbdImage image, String what) {
        try {
            return JSON.readTree(text);
        } catch (IOException e) {
            throw new PermanentException("rbd " + what + " of " + image.spec() + " printed no JSON: " + text, e);
        }
    }

    private static Set<String> strings(JsonNode array) {
        Set<String> out = new LinkedHashSet<>();
        array.forEach(n -> out.add(n.asText()));
        return Set.copyOf(out);
    }
}
