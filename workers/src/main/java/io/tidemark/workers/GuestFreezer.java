package io.tidemark.workers;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.hypervisor.CaptureConsistency;
import io.tidemark.core.hypervisor.ConsistencyNotMetException;
import io.tidemark.core.hypervisor.GuestAgent;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Freeze → snapshot → thaw for one guest, with the guarantees a frozen guest needs (its writes block
 * until the thaw, and Linux never thaws on its own):
 *
 * <ul>
 *   <li>The thaw runs in {@code finally} on every path the process survives, and also from a
 *       watchdog once the freeze has lasted {@code freezeLimit}, even while the snapshot hangs. A
 *       snapshot that returns after the watchdog thawed is only crash-consistent, and says so.
 *   <li>Before freezing, a marker {@code <stateDir>/<vm>.frozen} is written (and synced); it is
 *       removed once the thaw succeeded. {@link #thawLeftovers} — called when a worker starts —
 *       and the next {@link #around} of that VM thaw every VM whose marker is left, so a worker that
 *       died (or whose thaw failed) between freeze and thaw never leaves the guest frozen for good.
 *   <li>{@link ConsistencyPolicy#APPLICATION_REQUIRED}: when the agent does not answer, or the freeze fails, the snapshot
 *       is not taken and a {@link PermanentException} names the VM and says what to do. {@link
 *       ConsistencyPolicy#PREFERRED}: the snapshot is taken crash-consistent and the result says why.
 * </ul>
 */
public final class GuestFreezer {

    private static final Logger log = LoggerFactory.getLogger(GuestFreezer.class);

    /** How long one agent call may take. */
    public static final Duration DEFAULT_CALL_DEADLINE = Duration.ofSeconds(10);

    /** How long a guest may stay frozen before the watchdog thaws it. */
    public static final Duration DEFAULT_FREEZE_LIMIT = Duration.ofSeconds(30);

    private static final String MARKER_SUFFIX = ".frozen";
    private static final int THAW_ATTEMPTS = 3;
    /** One daemon thread for every freezer of the process: it only ever runs thaws. */
    private static final ScheduledExecutorService WATCHDOG =
            Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("thaw-watchdog"));

    private final Path stateDir;
    private final Duration callDeadline;
    private final Duration freezeLimit;
    private final Clock clock;

    /** With the default deadlines. */
    public GuestFreezer(Path stateDir) {
        this(stateDir, DEFAULT_CALL_DEADLINE, DEFAULT_FREEZE_LIMIT, Clock.systemUTC());
    }

    /**
     * @param stateDir where the "frozen by us" markers live; must survive a worker restart
     * @param callDeadline the deadline of each agent call
     * @param freezeLimit after this long frozen, the watchdog thaws the guest
     * @param clock stamps the markers
     */
    public GuestFreezer(Path stateDir, Duration callDeadline, Duration freezeLimit, Clock clock) {
        this.stateDir = stateDir;
        this.callDeadline = callDeadline;
        this.freezeLimit = freezeLimit;
        this.clock = clock;
    }

    /**
     * Runs {@code snapshot} (the atomic snapshot moment) with the guest frozen as {@code quiesce}
     * asks, and returns the consistency achieved. {@code onFrozen} runs right after the freeze,
     * before the snapshot (a hook for tests and fault drills).
     *
     * @throws PermanentException when {@code quiesce} is {@link ConsistencyPolicy#APPLICATION_REQUIRED} and the guest
     *     could not be frozen; the snapshot was then not taken
     * @throws RetriableException when {@link ConsistencyPolicy#APPLICATION_REQUIRED} and the watchdog thawed the guest
     *     before the snapshot returned (the snapshot was taken; the caller discards it)
     */
    public CaptureConsistency around(
            String vm, ConsistencyPolicy quiesce, GuestAgent agent, Runnable snapshot, Consumer<String> onFrozen) {
        if (quiesce == ConsistencyPolicy.CRASH) {
            snapshot.run();
            return CaptureConsistency.crash();
        }
        if (Files.exists(marker(vm))) {
            log.warn("VM {}: a marker says an earlier capture left the guest frozen; thawing it first", vm);
            thawAndUnmark(vm, agent);
        }
        try {
            agent.ping(callDeadline);
        } catch (TidemarkException e) {
            return withoutFreeze(vm, quiesce, snapshot, "no guest agent answered (" + e.getMessage() + ")", e);
        }
        mark(vm, agent);
        int frozen;
        try {
            frozen = agent.freeze(callDeadline);
        } catch (TidemarkException e) {
            thawAndUnmark(vm, agent); // a failed freeze may have frozen some file systems
            return withoutFreeze(vm, quiesce, snapshot, "the guest could not be frozen (" + e.getMessage() + ")", e);
        }
        if (frozen == 0) {
            thawAndUnmark(vm, agent);
            return withoutFreeze(
                    vm,
                    quiesce,
                    snapshot,
                    agent.describe() + " froze no file system (none is mounted, or none supports freezing)",
                    null);
        }
        // 0 frozen, 1 thawed by the snapshot's own path, 2 thawed by the watchdog
        AtomicInteger state = new AtomicInteger();
        long frozenAt = System.nanoTime();
        ScheduledFuture<?> dog = WATCHDOG.schedule(
                () -> {
                    if (state.compareAndSet(0, 2)) {
                        log.error(
                                "VM {}: frozen for {} and the snapshot has not returned; the watchdog thaws the guest",
                                vm,
                                freezeLimit);
                        thawAndUnmark(vm, agent);
                    }
                },
                freezeLimit.toNanos(),
                TimeUnit.NANOSECONDS);
        try {
            onFrozen.accept(vm);
            snapshot.run();
        } finally {
            if (state.compareAndSet(0, 1)) {
                dog.cancel(false);
                thawAndUnmark(vm, agent);
            } else {
                awaitWatchdog(vm, dog); // it is thawing the guest: let it finish, marker included
            }
        }
        if (state.get() == 2) {
            String reason = "the snapshot took longer than the freeze limit of " + freezeLimit
                    + ", so the watchdog thawed the guest before the snapshot moment";
            if (quiesce == ConsistencyPolicy.APPLICATION_REQUIRED) {
                throw new RetriableException("VM '" + vm + "' requires application consistency, but " + reason
                        + "; the capture is discarded and the job may be retried");
            }
            return CaptureConsistency.crash("application consistency preferred, but " + reason);
        }
        log.info(
                "VM {}: {} file system(s) frozen for {} ms around the snapshot",
                vm,
                frozen,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - frozenAt));
        return CaptureConsistency.application();
    }

    private static void awaitWatchdog(String vm, ScheduledFuture<?> dog) {
        try {
            dog.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (java.util.concurrent.ExecutionException e) {
            log.warn("VM {}: the thaw watchdog failed: {}", vm, e.getCause().toString());
        }
    }

    private CaptureConsistency withoutFreeze(
            String vm, ConsistencyPolicy quiesce, Runnable snapshot, String why, TidemarkException cause) {
        if (quiesce == ConsistencyPolicy.APPLICATION_REQUIRED) {
            String msg = "VM '" + vm + "' requires application consistency (policy consistency:"
                    + " application-required), but " + why + "; install and start qemu-guest-agent in the guest"
                    + " (with a virtio-serial port named org.qemu.guest_agent.0), or relax the policy to"
                    + " consistency: application-preferred";
            throw cause == null ? new ConsistencyNotMetException(msg) : new ConsistencyNotMetException(msg, cause);
        }
        log.warn("VM {}: application consistency preferred, but {}; capturing crash-consistent", vm, why);
        snapshot.run();
        return CaptureConsistency.crash("application consistency preferred, but " + why);
    }

    /**
     * Thaws every VM a marker names (a worker died between freeze and thaw) and removes the markers
     * of those thawed. A VM whose thaw fails keeps its marker and is retried by the next {@link
     * #around} of it and the next call of this.
     *
     * @param agents the agent of a VM, by name
     * @return the VMs thawed
     */
    public List<String> thawLeftovers(Function<String, GuestAgent> agents) {
        List<String> thawed = new ArrayList<>();
        if (!Files.isDirectory(stateDir)) {
            return thawed;
        }
        List<String> vms;
        try (Stream<Path> files = Files.list(stateDir)) {
            vms = files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(MARKER_SUFFIX))
                    .map(n -> n.substring(0, n.length() - MARKER_SUFFIX.length()))
                    .sorted()
                    .toList();
        } catch (IOException e) {
            throw new PermanentException("cannot list the freeze markers in " + stateDir + ": " + e, e);
        }
        for (String vm : vms) {
            log.warn("VM {}: left frozen by an earlier worker (marker {}); thawing it", vm, marker(vm));
            if (thawAndUnmark(vm, agents.apply(vm))) {
                thawed.add(vm);
            }
        }
        return thawed;
    }

    /** Whether a marker says {@code vm} may still be frozen by us. */
    public boolean markedFrozen(String vm) {
        return Files.exists(marker(vm));
    }

    /** Thaws with a few attempts; removes the marker on success. Never throws: callers are on cleanup paths. */
    private boolean thawAndUnmark(String vm, GuestAgent agent) {
        TidemarkException last = null;
        for (int attempt = 1; attempt <= THAW_ATTEMPTS; attempt++) {
            try {
                agent.thaw(callDeadline);
                unmark(vm);
                return true;
            } catch (TidemarkException e) {
                last = e;
            }
        }
        log.error(
                "VM {} may still be frozen: {} attempts to thaw it failed ({}); the marker {} stays, so the next"
                        + " capture of this VM and the next worker start retry; to thaw by hand run"
                        + " guest-fsfreeze-thaw through the guest agent",
                vm,
                THAW_ATTEMPTS,
                last.getMessage(),
                marker(vm));
        return false;
    }

    private Path marker(String vm) {
        return stateDir.resolve(vm + MARKER_SUFFIX);
    }

    private void mark(String vm, GuestAgent agent) {
        Path m = marker(vm);
        try {
            Files.createDirectories(stateDir);
            try (FileChannel ch = FileChannel.open(
                    m, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ch.write(StandardCharsets.UTF_8.encode("VM " + vm + " frozen by this worker at " + clock.instant()
                        + " through " + agent.describe() + "\n"));
                ch.force(true);
            }
        } catch (IOException e) {
            // without the marker a crash could leave the guest frozen for good: do not freeze
            throw new PermanentException(
                    "cannot write the freeze marker " + m + " (" + e + ") before freezing VM '" + vm
                            + "'; check that the worker's state directory is writable",
                    e);
        }
    }

    private void unmark(String vm) {
        try {
            Files.deleteIfExists(marker(vm));
        } catch (IOException e) {
            log.warn("VM {}: thawed, but the marker {} could not be removed: {}", vm, marker(vm), e.toString());
        }
    }
}
