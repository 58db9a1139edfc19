package io.tidemark.engine;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.format.EventCodec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The engine's durable record of what its jobs did: every {@link SnapshotJob} published to this
 * host's job topic, and every {@link SnapshotCaptured}, {@link RestorePointCreated}, {@link
 * ReplicaCommitted} and {@link JobFailed}, appended as one line each (the event's wire form, {@link
 * EventCodec}) to {@code <data>/state/history/jobs.jsonl}. {@link JobRuns} turns the lines back into
 * one row per job (firing → job → point or failure) for {@code tidemark jobs}.
 *
 * <p>One writer per data directory: the engine's history subscription ({@link #subscribe}), whose
 * consumer group commits an event's position only after its line is written and forced to disk, so
 * a restart neither loses nor (but for at-least-once redelivery, which {@link #read} removes by event
 * id) repeats a line. Bounded: when the current file reaches {@link Limits#fileBytes()} it is renamed
 * to {@code jobs.<n>.jsonl} (atomic) and a new one begun; the oldest beyond {@link
 * Limits#rotatedFiles()} are deleted. Readers may read while the writer writes: a torn last line or a
 * line of an unknown type is skipped and counted.
 */
public final class JobHistory implements EventBus.EventHandler, AutoCloseable {

    /** The current file's name. */
    static final String CURRENT = "jobs.jsonl";

    private static final Pattern ROTATED = Pattern.compile("jobs\\.(\\d{1,18})\\.jsonl");

    /**
     * How large the history may grow.
     *
     * @param fileBytes the size at which the current file is rotated
     * @param rotatedFiles how many rotated files are kept
     */
    public record Limits(long fileBytes, int rotatedFiles) {
        public Limits {
            if (fileBytes < 1 || rotatedFiles < 0) {
                throw new IllegalArgumentException("fileBytes ≥ 1 and rotatedFiles ≥ 0");
            }
        }

        /** 8 MiB per file and 4 rotated files: at most 40 MiB, some 20 000 jobs. */
        public static Limits defaults() {
            return new Limits(8L << 20, 4);
        }
    }

    private final Path dir;
    private final Limits limits;
    private FileChannel current; // guarded by this

    private JobHistory(Path dir, Limits limits) {
        this.dir = dir;
        this.limits = limits;
    }

    /** Where the history of the engine with data directory {@code data} lives. */
    public static Path directory(Path data) {
        return data.resolve("state").resolve("history");
    }

    /**
     * Opens (creating when absent) the history in {@code dir} for appending; what is there is kept.
     *
     * @throws PermanentException if the directory or file cannot be created or opened
     */
    public static JobHistory open(Path dir, Limits limits) {
        JobHistory h = new JobHistory(Objects.requireNonNull(dir, "dir"), Objects.requireNonNull(limits, "limits"));
        try {
            Files.createDirectories(dir);
            h.current = openCurrent(dir);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot open the job history in " + dir + ": " + e.getMessage() + "; check the data directory's"
                            + " permissions and free space",
                    e);
        }
        return h;
    }

    /** The topics whose events the history records, for the engine of {@code host}. */
    public static List<String> topics(String host) {
        return List.of(Topics.jobs(host), Topics.JOB_STATUS, Topics.RESTORE_POINTS, Topics.REPLICATION);
    }

    /** Subscribes the history to the bus as the one writer of {@code host}'s history. */
    public EventBus.Subscription subscribe(EventBus bus, String host) {
        return subscribe(bus, host, e -> {});
    }

    /** As {@link #subscribe(EventBus, String)}, handing each event on to {@code recorded} once it is written. */
    EventBus.Subscription subscribe(EventBus bus, String host, java.util.function.Consumer<Event> recorded) {
        return bus.subscribe("tidemark-history-" + host, topics(host), (topic, event) -> {
            handle(topic, event);
            recorded.accept(event);
        });
    }

    /**
     * Appends {@code event} when it is one the history records; returns once the line is on disk.
     *
     * @throws RetriableException if it cannot be written (the bus retries, then dead-letters it)
     */
    @Override
    public synchronized void handle(String topic, Event event) {
        if (!recorded(event)) {
            return;
        }
        byte[] wire = EventCodec.encode(event);
        ByteBuffer line =
                ByteBuffer.allocate(wire.length + 1).put(wire).put((byte) '\n').flip();
        try {
            if (current == null) {
                throw new IllegalStateException("the job history in " + dir + " is closed");
            }
            if (current.size() > 0 && current.size() + line.remaining() > limits.fileBytes()) {
                rotate();
            }
            while (line.hasRemaining()) {
                current.write(line);
            }
            current.force(false);
        } catch (IOException e) {
            throw new RetriableException(
                    "cannot append to the job history in " + dir + ": " + e.getMessage() + "; check free space", e);
        }
    }

    static boolean recorded(Event event) {
        return event.payload() instanceof SnapshotJob
                || event.payload() instanceof SnapshotCaptured
                || event.payload() instanceof RestorePointCreated
                || event.payload() instanceof ReplicaCommitted
                || event.payload() instanceof JobFailed;
    }

    private void rotate() throws IOException {
        current.close();
        current = null;
        List<Path> rotated = rotated(dir);
        long next = rotated.isEmpty() ? 1 : number(rotated.get(rotated.size() - 1)) + 1;
        Files.move(dir.resolve(CURRENT), dir.resolve("jobs." + next + ".jsonl"), StandardCopyOption.ATOMIC_MOVE);
        rotated = rotated(dir);
        for (int i = 0; i < rotated.size() - limits.rotatedFiles(); i++) {
            Files.deleteIfExists(rotated.get(i));
        }
        current = openCurrent(dir);
    }

    /** The current file, for appending; a line torn by a killed writer is ended, so the next one stands alone. */
    private static FileChannel openCurrent(Path dir) throws IOException {
        Path file = dir.resolve(CURRENT);
        // not APPEND (which excludes READ): the one writer keeps the position at the end itself
        FileChannel channel =
                FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        try {
            long size = channel.size();
            if (size > 0) {
                ByteBuffer last = ByteBuffer.allocate(1);
                channel.read(last, size - 1);
                channel.position(size);
                if (last.get(0) != '\n') {
                    channel.write(ByteBuffer.wrap(new byte[] {'\n'}));
                    channel.force(false);
                }
            }
        } catch (IOException e) {
            channel.close();
            throw e;
        }
        return channel;
    }

    /** The rotated files, oldest first. */
    private static List<Path> rotated(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> ROTATED.matcher(f.getFileName().toString()).matches())
                    .sorted(Comparator.comparingLong(JobHistory::number))
                    .toList();
        }
    }

    private static long number(Path rotated) {
        Matcher m = ROTATED.matcher(rotated.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException(rotated + " is not a rotated history file");
        }
        return Long.parseLong(m.group(1));
    }

    /**
     * What a history directory holds.
     *
     * @param events the recorded events, oldest first, each once (by event id)
     * @param skipped lines that could not be read: a line torn by a killed writer, or of a type or
     *     version this reader does not know
     */
    public record Contents(List<Event> events, int skipped) {
        public Contents {
            events = List.copyOf(events);
        }
    }

    /**
     * Reads the history in {@code dir}, oldest file first; an absent directory is an empty history.
     * Safe while the engine writes (a file rotated away meanwhile is read under its new name or, if
     * deleted, skipped).
     *
     * @throws PermanentException if a file cannot be read for another reason (permissions)
     */
    public static Contents read(Path dir) {
        return read(dir, java.time.Instant.MIN);
    }

    /** How much older than a reader's horizon a rotated file may be and still hold a job it shows. */
    static final java.time.Duration ROTATED_MARGIN = java.time.Duration.ofDays(1);

    /**
     * As {@link #read(Path)}, but skips the rotated files last written more than {@link
     * #ROTATED_MARGIN} before {@code horizon}: they hold only jobs that started before it (a job
     * ends within its deadline, hours at most), and reading 40 MiB costs seconds.
     */
    public static Contents read(Path dir, java.time.Instant horizon) {
        if (!Files.isDirectory(dir)) {
            return new Contents(List.of(), 0);
        }
        List<Event> events = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        int skipped = 0;
        try {
            List<Path> files = new ArrayList<>();
            for (Path f : rotated(dir)) {
                try {
                    if (!Files.getLastModifiedTime(f)
                            .toInstant()
                            .plus(ROTATED_MARGIN)
                            .isBefore(horizon)) {
                        files.add(f);
                    }
                } catch (NoSuchFileException rotatedMeanwhile) {
                    // deleted by the writer since the listing
                }
            }
            files.add(dir.resolve(CURRENT));
            for (Path f : files) {
                String text;
                try { // leniently: a line torn inside a character must not hide the others
                    text = new String(Files.readAllBytes(f), StandardCharsets.UTF_8);
                } catch (NoSuchFileException rotatedMeanwhile) {
                    continue;
                }
                for (String line : text.split("\n")) {
                    if (line.isBlank()) {
                        continue;
                    }
                    try {
                        Event e = EventCodec.decode(line.getBytes(StandardCharsets.UTF_8));
                        if (seen.add(e.eventId())) {
                            events.add(e);
                        }
                    } catch (PermanentException torn) {
                        skipped++;
                    }
                }
            }
        } catch (IOException e) {
            throw new PermanentException("cannot read the job history in " + dir + ": " + e.getMessage(), e);
        }
        return new Contents(events, skipped);
    }

    /** Closes the current file; events handled afterwards fail. */
    @Override
    public synchronized void close() {
        if (current != null) {
            try {
                current.close();
            } catch (IOException e) {
                throw new RetriableException("cannot close the job history in " + dir + ": " + e.getMessage(), e);
            }
            current = null;
        }
    }
}
