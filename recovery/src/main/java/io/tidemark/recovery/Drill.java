package io.tidemark.recovery;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.workers.guest.CheckGuest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A recovery drill: restores the newest point of a VM into an isolated scratch directory, checks it
 * ({@link DiskCheck}, or a {@link BootCheck} when a tiny-guest kernel is given), measures the RTO
 * (restore + check) against the RTO the VM's policy promises, and keeps the result on the target
 * ({@link DrillLog}). The scratch copy is deleted afterwards, whatever happened.
 */
public final class Drill {

    /**
     * What to drill.
     *
     * @param vm the VM whose newest point is restored
     * @param location the name the result is kept under (a target's name, or {@code local})
     * @param rtoLimit the RTO the VM's policy promises, if any ({@link #rtoLimit})
     * @param scratch the directory under which the isolated copy is made
     * @param parallel chunks fetched in parallel
     * @param bootKernel a tiny-guest kernel directory for the boot check; empty: no boot
     * @param bootTimeout how long the boot check waits for the agent and each check in the guest
     */
    public record Request(
            String vm,
            String location,
            Optional<Duration> rtoLimit,
            Path scratch,
            int parallel,
            Optional<Path> bootKernel,
            Duration bootTimeout) {}

    /**
     * The drill's outcome: the record kept on the target, and the boot check's summary line when it ran.
     */
    public record DrillResult(DrillRecord record, Optional<String> boot) {
        /** Every check passed. */
        public boolean passed() {
            return record.passed();
        }

        /** The checks passed, but later than the policy's RTO. */
        public boolean rtoViolated() {
            return record.rtoViolated();
        }
    }

    private final Clock clock;
    private final RecoveryProgress progress;

    public Drill(Clock clock, RecoveryProgress progress) {
        this.clock = clock;
        this.progress = progress;
    }

    /** The strictest RTO among the policies that select {@code vm} by name. */
    public static Optional<Duration> rtoLimit(PolicySet policies, String vm) {
        return policies.policies().stream()
                .filter(p -> p.vms().matches(vm, Map.of()))
                .map(Policy::rto)
                .flatMap(Optional::stream)
                .min(Comparator.naturalOrder());
    }

    /**
     * Fails now, before anything is restored, when {@code request} names a boot directory without a
     * kernel (the message says how to build one).
     */
    public static void checkBootKernel(Optional<Path> bootKernel) {
        bootKernel.ifPresent(CheckGuest.Kernel::in);
    }

    /**
     * Drills {@code request.vm()} from {@code repo} and records the result in {@code log}.
     *
     * @throws PermanentException when the VM has no point in {@code repo}
     */
    public DrillResult run(Repository repo, DrillLog log, Request request) {
        checkBootKernel(request.bootKernel());
        long t0 = System.nanoTime();
        Manifest m = repo.latest(request.vm())
                .orElseThrow(() -> new PermanentException("no restore point of VM '" + request.vm() + "' in "
                        + repo.describe() + "; nothing to drill (`tidemark list` shows what there is)"));
        Path dir = scratchDir(request.scratch());
        Checked checked;
        try {
            checked = restoreAndCheck(repo, m, dir, request);
        } finally {
            deleteRecursively(dir);
        }
        long rtoMillis = (System.nanoTime() - t0) / 1_000_000;
        DrillRecord r = new DrillRecord(
                request.vm(),
                request.location(),
                m.id(),
                m.capturedAt(),
                clock.instant(),
                rtoMillis,
                request.rtoLimit().map(Duration::toMillis).orElse(null),
                checked.check(),
                checked.passed(),
                checked.detail(m));
        log.record(r);
        return new DrillResult(r, checked.boot());
    }

    /** The checks' outcomes, one per disk in the point's order, and the boot summary when a boot ran. */
    private record Checked(List<DiskCheck.Outcome> outcomes, Optional<String> boot) {
        boolean passed() {
            return outcomes.stream().allMatch(DiskCheck.Outcome::passed);
        }

        String check() {
            return String.join(
                    ",",
                    outcomes.stream().map(DiskCheck.Outcome::check).distinct().toList());
        }

        String detail(Manifest m) {
            StringBuilder detail = new StringBuilder(boot.map(b -> b + "\n").orElse(""));
            for (int i = 0; i < outcomes.size(); i++) {
                DiskCheck.Outcome o = outcomes.get(i);
                detail.append(m.disks().get(i).name())
                        .append(": ")
                        .append(o.check())
                        .append(o.passed() ? " passed" : " FAILED")
                        .append(o.report().isBlank() ? "" : "\n" + o.report().strip())
                        .append('\n');
            }
            return detail.toString().strip();
        }
    }

    private Checked restoreAndCheck(Repository repo, Manifest m, Path dir, Request request) {
        Restorer restorer = new Restorer(repo, request.parallel());
        List<DiskCheck.Outcome> outcomes = new ArrayList<>();
        List<BootCheck.Restored> restored = new ArrayList<>();
        for (DiskEntry d : m.disks()) {
            Path image = dir.resolve(d.name() + ".raw");
            String label = "drill " + d.name();
            restorer.restoreDisk(m, d.name(), image, (n, of) -> progress.restored(label, n, of));
            restored.add(new BootCheck.Restored(d, image));
            if (request.bootKernel().isEmpty()) {
                outcomes.add(DiskCheck.check(repo, d, image));
            }
        }
        if (request.bootKernel().isEmpty()) {
            return new Checked(outcomes, Optional.empty());
        }
        Path kernel = request.bootKernel().get();
        progress.starting(
                "drill: booting the check guest from " + kernel + " (TCG, up to " + request.bootTimeout() + ")…");
        BootCheck.Result b = BootCheck.run(repo, kernel, restored, dir, request.bootTimeout());
        return new Checked(b.outcomes(), Optional.of(b.summary()));
    }

    private static Path scratchDir(Path scratch) {
        try {
            return Files.createTempDirectory(Files.createDirectories(scratch), "tidemark-drill-");
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot create the drill's scratch directory under " + scratch + ": " + e.getMessage()
                            + "; choose another with --scratch",
                    e);
        }
    }

    private static void deleteRecursively(Path dir) {
        try {
            FileTrees.delete(dir);
        } catch (IOException e) {
            throw new RetriableException(
                    "cannot remove the drill's scratch directory " + dir + ": " + e.getMessage()
                            + "; remove it by hand",
                    e);
        }
    }
}
