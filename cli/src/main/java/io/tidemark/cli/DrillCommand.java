package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.policies.PolicySet;
import io.tidemark.recovery.Drill;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.RpoTracker;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "drill",
        mixinStandardHelpOptions = true,
        description = {
            "Restore a VM's newest point into a scratch directory, check it and record the RTO.",
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
            "          tidemark drill --config /etc/tidemark/engine.yaml --vm web-1 --boot \\",
            "            /var/lib/tidemark/guest",
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

    @Mixin
    ColdWaitOption cold;

    @Option(names = "--vm", required = true, description = "the VM to drill")
    String vm;

    @Option(
            names = {"--from", "--target"},
            description = "an engine target's name to restore from (default: the local repository)")
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
            defaultValue = "5m",
            description = "how long the boot check waits for the guest agent and each check in the guest"
                    + " (like 90s or 5m, default 5m; TCG is slow)")
    Duration bootTimeout;

    @Option(names = "--json", description = "print the result as JSON; no progress bar")
    boolean json;

    Clock clock = Clock.systemUTC();

    @Override
    public Integer call() throws IOException {
        EngineConfig c = engine.engineConfig();
        Drill.Request request = new Drill.Request(
                vm,
                targetName == null ? RpoTracker.LOCAL : targetName,
                Drill.rtoLimit(policies(c), vm),
                scratch != null ? scratch : Path.of(System.getProperty("java.io.tmpdir")),
                parallel,
                Optional.ofNullable(bootKernel),
                bootTimeout);
        Drill.checkBootKernel(request.bootKernel()); // fail before opening or restoring anything
        Drill.DrillResult result;
        try (ObjectTarget target = engine.open(c, targetName)) {
            Repository repo = Repository.open(target, engine.passphrases(c));
            // before the drill's clock starts: the wait for an archive is not the restore's time
            repo.latest(vm)
                    .ifPresent(m -> cold.prepare(
                            target, repo, java.util.List.of(m), ColdWaitOption.disk(null), json ? null : System.err));
            result = new Drill(clock, ProgressBars.onTerminal(json)).run(repo, new DrillLog(target), request);
        }
        print(result.record(), result.boot());
        if (!result.passed()) {
            return Main.EXIT_PERMANENT;
        }
        return result.rtoViolated() ? EXIT_RTO_VIOLATED : 0;
    }

    /** The policies the engine config names (none when their directory does not exist). */
    private PolicySet policies(EngineConfig c) {
        Path dir = c.policies() != null ? c.policies() : EngineOptions.DEFAULT_POLICIES;
        return Files.isDirectory(dir) ? engine.policies(c) : PolicySet.empty();
    }

    private static final String NO_BOOT = "boot: not run (no --boot kernel directory)";

    /** The drill's JSON: the record, the RTO and its limit in seconds, and the boot check's summary. */
    static ObjectNode toJson(DrillRecord r, Optional<String> boot) {
        ObjectNode o = Json.mapper().valueToTree(r);
        o.put("rtoSeconds", r.rtoMillis() / 1000.0);
        r.rtoLimit().ifPresent(l -> o.put("rtoLimitSeconds", l.toSeconds()));
        o.put("rtoViolated", r.rtoViolated());
        o.put("bootCheck", boot.orElse(NO_BOOT));
        return o;
    }

    private void print(DrillRecord r, Optional<String> boot) throws IOException {
        if (json) {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(toJson(r, boot)));
            return;
        }
        System.out.printf(
                "drill of %s from %s: restore point %s (captured %s)%n",
                r.vm(), r.location(), r.restorePoint(), r.capturedAt());
        System.out.println(r.detail());
        if (boot.isEmpty()) {
            System.out.println(NO_BOOT);
        }
        System.out.printf(
                "RTO measured %s, policy %s%s%n",
                FailoverCommand.seconds(r.rto()),
                r.rtoLimit().map(Human::duration).orElse("none"),
                r.rtoViolated() ? "  VIOLATED" : "");
        System.out.println(r.passed() ? "drill PASSED" : "drill FAILED");
    }
}
