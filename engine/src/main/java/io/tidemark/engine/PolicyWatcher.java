package io.tidemark.engine;

import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.policies.PolicyException;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicySet;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reloads a policy directory when it changes. Every poll fingerprints the directory's policy files
 * (names, sizes, modification times and SHA-256 of their content): polling works on NFS, where
 * file-system events do not. When the fingerprint changes, the directory is parsed again: a valid set
 * goes to the listener; an invalid one is logged problem by problem ({@code file:line:column}) and the
 * current set stays in force. A listener that throws {@link TidemarkException} refuses the set the
 * same way; when that exception is retriable, the next poll tries the same files again.
 *
 * <p>{@link #poll()} runs one check on the caller's thread (tests call it); {@link #start} polls on a
 * daemon thread until {@link #close()}.
 */
final class PolicyWatcher implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(PolicyWatcher.class);

    private final Path dir;
    private final PolicyParser parser;
    private final Consumer<PolicySet> onReload;
    private final Object lock = new Object();
    private String fingerprint;
    private volatile PolicySet current;
    private ScheduledExecutorService executor;

    /**
     * A watcher of {@code dir}, whose policies are {@code current} now.
     *
     * @param onReload receives each new valid set; may throw {@link TidemarkException} to refuse it
     */
    PolicyWatcher(Path dir, PolicyParser parser, PolicySet current, Consumer<PolicySet> onReload) {
        this.dir = Objects.requireNonNull(dir, "dir");
        this.parser = Objects.requireNonNull(parser, "parser");
        this.current = Objects.requireNonNull(current, "current");
        this.onReload = Objects.requireNonNull(onReload, "onReload");
        this.fingerprint = fingerprint(dir);
    }

    /** Polls every {@code interval} on a daemon thread, until closed. */
    PolicyWatcher start(Duration interval) {
        synchronized (lock) {
            if (executor != null) {
                throw new IllegalStateException("already started");
            }
            executor = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("policy-watcher"));
        }
        long millis = interval.toMillis();
        executor.scheduleWithFixedDelay(this::pollLogged, millis, millis, TimeUnit.MILLISECONDS);
        return this;
    }

    /** The policies in force: the last valid set the listener accepted. */
    PolicySet current() {
        return current;
    }

    /**
     * Checks the directory once; when it changed, parses it and hands a valid set to the listener.
     *
     * @return true when a new set was accepted
     */
    boolean poll() {
        synchronized (lock) {
            String now = fingerprint(dir);
            if (now.equals(fingerprint)) {
                return false;
            }
            String previous = fingerprint;
            fingerprint = now;
            PolicySet next;
            try {
                next = parser.loadDirectory(dir);
            } catch (PolicyException e) {
                e.problems().forEach(p -> log.error("policy reload refused: {}", p));
                log.error(
                        "{} problem(s) in {}; the {} policies loaded before stay in force",
                        e.problems().size(),
                        dir,
                        current.size());
                return false;
            }
            try {
                onReload.accept(next);
            } catch (TidemarkException e) {
                if (e.retriable()) {
                    fingerprint = previous; // the next poll tries the same files again
                }
                log.error(
                        "policy reload {}: {}; the policies loaded before stay in force",
                        e.retriable() ? "failed, will retry" : "refused",
                        e.getMessage());
                return false;
            }
            current = next;
            log.info("policies reloaded from {}: {}", dir, next.names());
            return true;
        }
    }

    private void pollLogged() {
        try {
            poll();
        } catch (RuntimeException e) { // the next poll retries; an exception would end the schedule
            log.error("cannot check the policy directory {}", dir, e);
        }
    }

    /** Names, sizes, modification times and content hashes of the policy files of {@code dir}. */
    static String fingerprint(Path dir) {
        TreeMap<String, String> files = new TreeMap<>();
        if (Files.isDirectory(dir)) {
            try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
                for (Path f : stream) {
                    String name = f.getFileName().toString();
                    if (name.startsWith(".")
                            || !(name.endsWith(".yaml") || name.endsWith(".yml"))
                            || !Files.isRegularFile(f)) {
                        continue;
                    }
                    byte[] content = Files.readAllBytes(f);
                    files.put(
                            name,
                            Files.size(f) + " " + Files.getLastModifiedTime(f).toMillis() + " "
                                    + HexFormat.of().formatHex(sha256().digest(content)));
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the policy directory " + dir, e);
            }
        }
        return files.toString();
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }

    @Override
    public void close() {
        synchronized (lock) {
            if (executor != null) {
                executor.shutdownNow();
            }
        }
    }
}
