package io.tidemark.recovery;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.workers.restore.Qcow2FileSink;
import io.tidemark.workers.restore.QemuNbdDiskSink;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Brings the VMs of a DR plan up at the DR site, group after group: each VM's disks are restored
 * from its chosen point (see {@link RecoveryPoints}) under the plan's work dir (the VMs of a group in
 * parallel), each VM is started in QEMU ({@link DrSite}), and the next group starts only once every
 * VM of this one runs. A VM that already runs is reported and left alone, so a re-run starts only
 * the rest.
 */
public final class Failover {

    /** How long a started VM may take to report {@code running}. */
    public static final Duration RUN_TIMEOUT = Duration.ofMinutes(2);

    /** What became of a VM. */
    public enum State {
        STARTED("started"),
        ALREADY_RUNNING("already-running");

        private final String label;

        State(String label) {
            this.label = label;
        }

        /** The name the CLI shows and prints in JSON. */
        public String label() {
            return label;
        }
    }

    /**
     * When a VM this failover started ran: its RPO (how old its data is), its RTO (from the start
     * of the failover until it ran), when its QEMU was launched and when it reported running.
     */
    public record Timing(Duration rpo, Duration rto, Instant launchedAt, Instant runningAt) {}

    /**
     * The outcome for one VM: its point and disks; the timing and the restored disks (with their
     * SHA-256) only when this failover started it.
     */
    public record VmResult(
            String vm,
            String group,
            Manifest point,
            State state,
            Optional<Timing> timing,
            List<Path> disks,
            List<Restorer.Result> restored,
            Optional<DrHypervisor.Started> started) {
        public VmResult {
            disks = List.copyOf(disks);
            restored = List.copyOf(restored);
        }

        /** A result without the DR host's account of the start. */
        public VmResult(
                String vm,
                String group,
                Manifest point,
                State state,
                Optional<Timing> timing,
                List<Path> disks,
                List<Restorer.Result> restored) {
            this(vm, group, point, state, timing, disks, restored, Optional.empty());
        }
    }

    /**
     * What a dry run found for one VM: its point, whether it runs already, the directory its disks
     * would be restored to, and their files.
     */
    public record PlannedVm(
            RecoveryPlan.Vm spec,
            String group,
            Manifest point,
            boolean running,
            Path dir,
            List<Path> disks,
            List<String> adaptations) {
        public PlannedVm {
            disks = List.copyOf(disks);
            adaptations = List.copyOf(adaptations);
        }

        /** A planned VM without adaptations. */
        public PlannedVm(
                RecoveryPlan.Vm spec, String group, Manifest point, boolean running, Path dir, List<Path> disks) {
            this(spec, group, point, running, dir, disks, List.of());
        }

        public String vm() {
            return spec.name();
        }
    }

    /** A dry run: what would happen, and every reason it could not. */
    public record DryRun(List<PlannedVm> vms, List<String> problems) {
        public boolean ok() {
            return problems.isEmpty();
        }
    }

    private final Repository repository;
    private final DrSite site;
    private final DrHypervisor host;
    private final int parallel;
    private final Clock clock;
    private final RecoveryProgress progress;

    /**
     * @param parallel chunks fetched in parallel per disk
     */
    public Failover(Repository repository, DrSite site, int parallel, Clock clock, RecoveryProgress progress) {
        this(repository, site, site, parallel, clock, progress);
    }

    /**
     * @param site the DR site's files (restored disks, sockets)
     * @param host where the VMs run: {@code site}'s QEMU processes, or a {@link LibvirtDrSite}
     * @param parallel chunks fetched in parallel per disk
     */
    public Failover(
            Repository repository,
            DrSite site,
            DrHypervisor host,
            int parallel,
            Clock clock,
            RecoveryProgress progress) {
        this.repository = repository;
        this.site = site;
        this.host = host;
        this.parallel = parallel;
        this.clock = clock;
        this.progress = progress;
    }

    /** The point each VM of {@code plan} comes back from. */
    public Map<String, Manifest> points(RecoveryPlan plan) {
        return RecoveryPoints.choose(plan, repository::manifests);
    }

    /** Checks the plan, the points, the disks' paths and QEMU; writes nothing, starts nothing. */
    public DryRun dryRun(RecoveryPlan plan, Map<String, Manifest> points) {
        List<String> problems = new ArrayList<>();
        if (host == site && !DrChecks.onPath(DrSite.QEMU)) {
            problems.add(DrSite.QEMU + " is not on PATH (install qemu-system-x86)");
        }
        DrChecks.writable(site.workDir()).ifPresent(problems::add);
        if (site.diskFormat() != RecoveryPlan.DiskFormat.RAW) {
            for (String tool : List.of("qemu-img", "qemu-nbd")) {
                if (!DrChecks.onPath(tool)) {
                    problems.add(tool + " is not on PATH: dr-host.disks.format "
                            + site.diskFormat().label() + " needs it (install qemu-utils)");
                }
            }
        }
        List<PlannedVm> vms = new ArrayList<>();
        for (RecoveryPlan.Group g : plan.groups()) {
            for (RecoveryPlan.Vm vm : g.vms()) {
                Manifest m = points.get(vm.name());
                List<String> adaptations = List.of();
                try {
                    problems.addAll(host.check(vm, m));
                    adaptations = m == null ? List.of() : host.adaptations(vm, m);
                } catch (TidemarkException e) {
                    problems.add("cannot check " + vm.name() + " at " + host.describe() + ": " + e.getMessage());
                }
                boolean running = status(vm.name()).isPresent();
                vms.add(new PlannedVm(
                        vm, g.name(), m, running, site.workDir().resolve(vm.name()), disks(vm.name(), m), adaptations));
            }
        }
        return new DryRun(vms, problems);
    }

    /**
     * Brings every group up in the plan's order.
     *
     * @param startedNanos {@link System#nanoTime()} when the operator's command began: each RTO counts
     *     from there
     * @return one result per VM, in plan order
     */
    public List<VmResult> run(RecoveryPlan plan, Map<String, Manifest> points, long startedNanos) {
        List<VmResult> results = new ArrayList<>();
        for (RecoveryPlan.Group group : plan.groups()) {
            results.addAll(bringUp(group, points, startedNanos));
        }
        return results;
    }

    private List<VmResult> bringUp(RecoveryPlan.Group group, Map<String, Manifest> points, long startedNanos) {
        List<RecoveryPlan.Vm> toStart = new ArrayList<>();
        List<VmResult> results = new ArrayList<>();
        for (RecoveryPlan.Vm vm : group.vms()) {
            if (status(vm.name()).isPresent()) {
                Manifest m = points.get(vm.name());
                results.add(new VmResult(
                        vm.name(),
                        group.name(),
                        m,
                        State.ALREADY_RUNNING,
                        Optional.empty(),
                        disks(vm.name(), m),
                        List.of()));
            } else {
                toStart.add(vm);
            }
        }
        Map<String, Launched> launched = restoreAndLaunch(group, toStart, points);
        for (RecoveryPlan.Vm vm : toStart) {
            host.awaitRunning(vm.name(), RUN_TIMEOUT);
            Manifest m = points.get(vm.name());
            Duration rto = Duration.ofNanos(System.nanoTime() - startedNanos);
            Instant now = clock.instant();
            Launched l = launched.get(vm.name());
            Timing timing = new Timing(Duration.between(m.capturedAt(), now), rto, l.at(), now);
            results.add(new VmResult(
                    vm.name(),
                    group.name(),
                    m,
                    State.STARTED,
                    Optional.of(timing),
                    disks(vm.name(), m),
                    l.restored(),
                    Optional.of(l.started())));
        }
        // report in plan order
        List<VmResult> ordered = new ArrayList<>();
        for (RecoveryPlan.Vm vm : group.vms()) {
            results.stream().filter(r -> r.vm().equals(vm.name())).forEach(ordered::add);
        }
        return ordered;
    }

    private record Launched(Instant at, List<Restorer.Result> restored, DrHypervisor.Started started) {}

    /** The VM's state at the DR host; a host that cannot be asked is a failure the operator must see. */
    private Optional<String> status(String vm) {
        return host.status(vm);
    }

    /** Restores the disks of {@code toStart} in parallel, starting each VM as soon as its disks are in place. */
    private Map<String, Launched> restoreAndLaunch(
            RecoveryPlan.Group group, List<RecoveryPlan.Vm> toStart, Map<String, Manifest> points) {
        long total = toStart.stream()
                .mapToLong(v -> points.get(v.name()).sizeBytes())
                .sum();
        String label = "group " + group.name();
        AtomicLong done = new AtomicLong();
        Map<String, Launched> launched = new ConcurrentHashMap<>();
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, toStart.size()), r -> {
            Thread t = new Thread(r, "failover-vm");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<?>> restores = new ArrayList<>();
            for (RecoveryPlan.Vm vm : toStart) {
                restores.add(pool.submit(() -> {
                    Manifest m = points.get(vm.name());
                    List<Restorer.Result> restored =
                            restore(vm.name(), m, n -> progress.restored(label, done.addAndGet(n), total));
                    DrHypervisor.Started started = host.start(vm, m, disks(vm.name(), m));
                    launched.put(vm.name(), new Launched(clock.instant(), restored, started));
                    return null;
                }));
            }
            for (Future<?> f : restores) {
                await(f);
            }
        } finally {
            pool.shutdownNow();
        }
        return launched;
    }

    /** Restores every disk of {@code m}, reporting each increment of bytes restored. */
    private List<Restorer.Result> restore(String vm, Manifest m, java.util.function.LongConsumer added) {
        Restorer restorer = new Restorer(repository, parallel);
        List<Restorer.Result> restored = new ArrayList<>();
        for (DiskEntry d : m.disks()) {
            Path file = site.disk(vm, d.name());
            Optional<String> rbd = site.rbdSpec(vm, d.name());
            try {
                if (rbd.isEmpty()) {
                    Files.createDirectories(file.getParent());
                }
            } catch (IOException e) {
                throw new PermanentException(
                        "cannot create " + file.getParent() + " for the disks of " + vm + ": " + e.getMessage()
                                + "; check the plan's work-dir",
                        e);
            }
            long[] last = {0};
            Restorer.Progress progress = (n, of) -> {
                long delta;
                synchronized (last) {
                    delta = n - last[0];
                    last[0] = n;
                }
                added.accept(delta);
            };
            if (rbd.isPresent()) {
                // written in place under its final name, which must not exist yet (never overwritten)
                try (QemuNbdDiskSink sink = QemuNbdDiskSink.rbd(rbd.get(), d.sizeBytes())) {
                    restored.add(restorer.restore(m, d.name(), sink, progress));
                }
            } else if (site.diskFormat() == RecoveryPlan.DiskFormat.QCOW2) {
                // written directly as <disk>.qcow2.partial (ADR 23), renamed once complete
                try (Qcow2FileSink sink = Qcow2FileSink.create(file, d.sizeBytes())) {
                    restored.add(restorer.restore(m, d.name(), sink, progress));
                }
            } else {
                restored.add(restorer.restoreDisk(m, d.name(), file, progress));
            }
        }
        return restored;
    }

    private List<Path> disks(String vm, Manifest m) {
        return m.disks().stream().map(d -> site.disk(vm, d.name())).toList();
    }

    private static void await(Future<?> f) {
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("failover interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TidemarkException t) {
                throw t;
            }
            throw new PermanentException("failover failed: " + e.getCause(), e.getCause());
        }
    }
}
