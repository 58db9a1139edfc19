package io.tidemark.workers.mirror;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.workers.qmp.QmpClient;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The worker-side role of continuous protection on one host (ADR 19): protects whole VMs, one
 * {@link ContinuousMirror} per disk, each supervised on its own thread, all measured by one {@link
 * MirrorLagWatch}. The DR export of each disk comes from a URI template with {@code {vm}} and
 * {@code {disk}} placeholders, e.g. {@code nbd://dr-host:10809/{vm}-{disk}}. Status and metrics
 * answer from memory. {@link #close()} stops supervising but leaves the mirrors running in QEMU for
 * the next process to adopt; {@link #unprotect} stops them.
 */
public final class ContinuousProtection implements AutoCloseable {

    /**
     * One continuously protected VM.
     *
     * @param tls TLS on the NBD link of every disk; empty: plain NBD
     */
    public record Protected(
            String vm, Path qmpSocket, String policy, Duration rpo, String drUriTemplate, Optional<DrTls> tls) {

        /** Plain NBD. */
        public Protected(String vm, Path qmpSocket, String policy, Duration rpo, String drUriTemplate) {
            this(vm, qmpSocket, policy, rpo, drUriTemplate, Optional.empty());
        }
    }

    private final MirrorLagWatch watch;
    private final Clock clock;
    private final Duration poll;
    private final Duration reconnectDelay;
    private final Map<String, List<ContinuousMirror>> mirrors = new ConcurrentHashMap<>();

    public ContinuousProtection(EventBus bus, Clock clock, Duration poll, Duration reconnectDelay) {
        this.watch = new MirrorLagWatch(bus, clock);
        this.clock = clock;
        this.poll = poll;
        this.reconnectDelay = reconnectDelay;
    }

    /**
     * Starts (or adopts) a mirror of every disk of the VM.
     *
     * @throws PermanentException naming the missing QEMU feature, the unreachable DR export or a
     *     replica of the wrong size (mirrors of this VM already started are stopped again)
     */
    public synchronized void protect(Protected p) {
        if (mirrors.containsKey(p.vm())) {
            return;
        }
        List<ContinuousMirror> started = new ArrayList<>();
        try {
            for (String disk : disks(p)) {
                DrNbdTarget target = DrNbdTarget.parse(
                                p.drUriTemplate().replace("{vm}", p.vm()).replace("{disk}", disk))
                        .withTls(p.tls());
                ContinuousMirror m = new ContinuousMirror(
                        p.vm(),
                        p.qmpSocket(),
                        disk,
                        target,
                        reconnectDelay,
                        clock,
                        watch.listener(p.policy(), p.rpo()));
                m.supervise(poll);
                started.add(m);
            }
        } catch (RuntimeException e) {
            started.forEach(ContinuousMirror::stop);
            throw e;
        }
        mirrors.put(p.vm(), List.copyOf(started));
    }

    private static List<String> disks(Protected p) {
        List<String> out = new ArrayList<>();
        try (QmpClient q = QmpClient.connect(p.qmpSocket())) {
            for (JsonNode dev : q.execute("query-block")) {
                String qdev = dev.path("qdev").asText("");
                if (dev.has("inserted") && !qdev.isEmpty()) {
                    String[] parts = qdev.split("/");
                    String last = parts[parts.length - 1];
                    // virtio-blk's qdev ends in /virtio-backend: the device id is the element before it
                    out.add(last.equals("virtio-backend") && parts.length > 1 ? parts[parts.length - 2] : last);
                }
            }
        }
        if (out.isEmpty()) {
            throw new PermanentException("VM " + p.vm() + " (" + p.qmpSocket() + ") has no disk to protect");
        }
        return out;
    }

    /** Stops the VM's mirrors in QEMU (the replicas keep what they have). */
    public synchronized void unprotect(String vm) {
        List<ContinuousMirror> ms = mirrors.remove(vm);
        if (ms == null) {
            return;
        }
        watch.forget(vm);
        RuntimeException first = null;
        for (ContinuousMirror m : ms) { // every disk's supervisor ends, even when QEMU refuses one
            try {
                m.stop();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** The newest state of each disk of a protected VM, by disk; empty when it is not protected. */
    public Map<String, MirrorState> disks(String vm) {
        Map<String, MirrorState> out = new java.util.TreeMap<>();
        mirrors.getOrDefault(vm, List.of()).forEach(m -> out.put(m.state().disk(), m.state()));
        return out;
    }

    /** The newest state of every protected disk, from memory. */
    public List<MirrorState> status() {
        return watch.states();
    }

    /** Prometheus text lines ({@code tidemark_mirror_lag_seconds}, {@code tidemark_mirror_in_sync}). */
    public String metrics() {
        return watch.metrics();
    }

    /** Stops supervising; the mirrors keep running in QEMU. */
    @Override
    public synchronized void close() {
        mirrors.values().forEach(ms -> ms.forEach(ContinuousMirror::close));
        mirrors.clear();
    }
}
