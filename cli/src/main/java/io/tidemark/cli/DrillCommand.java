package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.recovery.BootCheck;
import io.tidemark.recovery.DiskCheck;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.scheduler.RpoTracker;
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
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "drill",
        mixinStandardHelpOptions = true,
        description = {
            "Recovery drill: restore the newest restore point of a VM into an isolated scratch directory, check",
            "it, and record the measured RTO (restore + check) against the RTO its policy promises. The check",
            "is e2fsck -fn for a disk that holds an ext2/3/4 file system, otherwise the restored image is read",
            "back and every chunk compared with the point's index digests. With --boot DIR the check boots a",
            "throwaway QEMU (TCG, no network) from the tiny-guest kernel in DIR with the restored disks attached",
            "through copy-on-write overlays, waits for its guest agent and has the guest mount each ext disk;",
            "the RTO then includes the boot. The result is kept on the target",
            "(state/drills/) and shown by `tidemark status` and in /metrics (tidemark_rto_seconds,",
            "tidemark_rto_limit_seconds, tidemark_drill_passed). The scratch copy is deleted afterwards.",
            "",
            "Example:  tidemark drill --config /etc/tidemark/engine.yaml --vm web-1 --target offsite",
            "          tidemark drill --config /etc/tidemark/engine.yaml --vm web-1 --boot /var/lib/tidemark/guest",
            "          (build DIR once with deploy/guest/build-tiny-guest.sh DIR)",
            "",
            "Runbook: docs/runbooks/drill.md",
        },
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:the check passed within the policy's RTO (or no RTO is promised)",
            "1:invalid input (a flag, a policy file)",
            "2:the check failed (the report says why), or the VM has no restore point there",
            "3:the target did not answer in time; retry",
            "4:the check passed but took longer than the policy's RTO"
        })
final class DrillCommand implements Callable<Integer> {

    static final int EXIT_RTO_VIOLATED = 4;

    @Mixin
    EngineOptions engine;

    @Option(names = "--vm", required = true, description = "the VM to drill")
    String vm;

    @Option(names = "--target", description = "an engine target's name to restore from (default: the local repository)")
    String targetName;

    @Option(
            names = "--scratch",
            description = "where the isolated copy is restored (default: the system temp directory)")
    Path scratch;

    @Option(names = "--parallel", defaultValue = "8", description = "chunks fetched in parallel (default: 8)")
    int parallel;

    @Option(
            names = "--boot",
            paramLabel = "DIR",
            description = "boot check: a tiny-guest kernel directory (vmlinuz, initrd.gz; made by"
                    + " deploy/guest/build-tiny-guest.sh DIR); default: no boot, e2fsck/chunk digests")
    Path bootKernel;

    @Option(
            names = "--boot-timeout",
            defaultValue = "PT5M",
            description = "how long the boot check waits for the guest agent and each check in the guest"
                    + " (ISO-8601, default PT5M; TCG is slow)")
    Duration bootTimeout;

    @Option(names = "--json", description = "print the result as JSON; no progress bar")
    boolean json;

    Clock clock = Clock.systemUTC();

    @Override
    public Integer call() throws IOException {
        EngineConfig c = engine.engineConfig();
        Optional<Duration> limit = rtoLimit(c);
        String location = targetName == null ? RpoTracker.LOCAL : targetName;
        if (bootKernel != null) {
            io.tidemark.workers.guest.CheckGuest.Kernel.in(bootKernel); // fail before restoring anything
        }
        try (ObjectTarget target = engine.open(c, targetName)) {
            Repository repo = Repository.open(target, engine.passphrases(c));
            long t0 = System.nanoTime();
            Manifest m = repo.latest(vm)
                    .orElseThrow(() -> new PermanentException("no restore point of VM '" + vm + "' in "
                            + repo.describe() + "; nothing to drill (`tidemark list` shows what there is)"));
            Path dir = Files.createTempDirectory(
                    scratch != null ? Files.createDirectories(scratch) : Path.of(System.getProperty("java.io.tmpdir")),
                    "tidemark-drill-");
            List<DiskCheck.Outcome> outcomes = new ArrayList<>();
            String boot = null;
            try {
                Restorer restorer = new Restorer(repo, parallel);
                List<BootCheck.Restored> restored = new ArrayList<>();
                for (DiskEntry d : m.disks()) {
                    Path image = dir.resolve(d.name() + ".raw");
                    restorer.restoreDisk(
                            m,
                            d.name(),
                            image,
                            new ProgressBar(System.err, "drill " + d.name(), !json && System.console() != null));
                    restored.add(new BootCheck.Restored(d, image));
                    if (bootKernel == null) {
                        outcomes.add(DiskCheck.check(repo, d, image));
                    }
                }
                if (bootKernel != null) {
                    if (!json && System.console() != null) {
                        System.err.printf(
                                "drill: booting the check guest from %s (TCG, up to %s)…%n", bootKernel, bootTimeout);
                    }
                    BootCheck.Result b = BootCheck.run(repo, bootKernel, restored, dir, bootTimeout);
                    boot = b.summary();
                    outcomes.addAll(b.outcomes());
                }
            } finally {
                deleteRecursively(dir);
            }
            long rtoMillis = (System.nanoTime() - t0) / 1_000_000;
            boolean passed = outcomes.stream().allMatch(DiskCheck.Outcome::passed);
            String check = String.join(
                    ",",
                    outcomes.stream().map(DiskCheck.Outcome::check).distinct().toList());
            StringBuilder detail = new StringBuilder(boot == null ? "" : boot + "\n");
            for (int i = 0; i < outcomes.size(); i++) {
                DiskCheck.Outcome o = outcomes.get(i);
                detail.append(m.disks().get(i).name())
                        .append(": ")
                        .append(o.check())
                        .append(o.passed() ? " passed" : " FAILED")
                        .append(o.report().isBlank() ? "" : "\n" + o.report().strip())
                        .append('\n');
            }
            DrillRecord r = new DrillRecord(
                    vm,
                    location,
                    m.id(),
                    m.capturedAt(),
                    clock.instant(),
                    rtoMillis,
                    limit.map(Duration::toMillis).orElse(null),
                    check,
                    passed,
                    detail.toString().strip());
            new DrillLog(target).record(r);
            print(r, boot);
            if (!passed) {
                return Main.EXIT_PERMANENT;
            }
            return r.rtoViolated() ? EXIT_RTO_VIOLATED : 0;
        }
    }

    /** The strictest RTO among the policies that select the VM by name. */
    private Optional<Duration> rtoLimit(EngineConfig c) {
        Path dir = c.policies() != null ? c.policies() : EngineOptions.DEFAULT_POLICIES;
        PolicySet set = Files.isDirectory(dir) ? engine.policies(c) : PolicySet.empty();
        return set.policies().stream()
                .filter(p -> p.vms().matches(vm, Map.of()))
                .map(Policy::rto)
                .flatMap(Optional::stream)
                .min(Comparator.naturalOrder());
    }

    private void print(DrillRecord r, String boot) throws IOException {
        String bootCheck = boot != null ? boot : "boot: not run (no --boot kernel directory)";
        if (json) {
            ObjectNode o = Json.mapper().valueToTree(r);
            o.put("rtoSeconds", r.rtoMillis() / 1000.0);
            r.rtoLimit().ifPresent(l -> o.put("rtoLimitSeconds", l.toSeconds()));
            o.put("rtoViolated", r.rtoViolated());
            o.put("bootCheck", bootCheck);
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(o));
            return;
        }
        System.out.printf(
                "drill of %s from %s: restore point %s (captured %s)%n",
                r.vm(), r.location(), r.restorePoint(), r.capturedAt());
        System.out.println(r.detail());
        if (boot == null) {
            System.out.println(bootCheck);
        }
        System.out.printf(
                "RTO measured %s, policy %s%s%n",
                FailoverCommand.seconds(r.rto()),
                r.rtoLimit().map(StatusCommand::human).orElse("none"),
                r.rtoViolated() ? "  VIOLATED" : "");
        System.out.println(r.passed() ? "drill PASSED" : "drill FAILED");
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
