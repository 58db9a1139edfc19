package io.tidemark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.repository.RestorePointSelector;
import io.tidemark.scheduler.hook.HookJson;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.scheduler.hook.InvalidHookException;
import io.tidemark.scheduler.hook.RollbackRequest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code tidemark rollback}: return an app's VMs to the points taken before a deploy. */
@Command(
        mixinStandardHelpOptions = true,
        name = "rollback",
        exitCodeOnInvalidInput = Main.EXIT_INVALID,
        description = {
            "Roll the VMs of an app back to the restore points taken before a deploy.",
            "Return the VMs of APP on an engine's host to the restore points its pre-deploy hook took before",
            "SHA was deployed. For each VM the engine restores every disk into a new qcow2 image next to the",
            "current one while the guest runs, then pauses the guest, switches its disks to the new images and",
            "resets it: the guest boots from the pre-deploy contents in the same QEMU process. The previous",
            "images stay untouched (for forensics; remove them when done). The VMs' next backups read their",
            "disks in full (only changed chunks are stored).",
            "",
            "Example, after `tidemark hook post-deploy --app shop --commit 4f2a9c1 --outcome failure`:",
            "  tidemark rollback --app shop --to pre-deploy:4f2a9c1 --url http://hv1:9465"
        },
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:every VM runs again from its pre-deploy point",
            "1:invalid input (a flag, a missing secret)",
            "2:no pre-deploy point of that deploy on the host, or a VM could not be switched (named)",
            "3:the engine is unreachable or a repository is unavailable; run it again"
        })
final class RollbackCommand implements Callable<Integer> {

    @Option(names = "--app", paramLabel = "APP", description = "the app whose VMs to return")
    String app;

    @Option(
            names = "--to",
            paramLabel = "TAG",
            required = true,
            description = "pre-deploy:SHA or pre-deploy:APP@SHA (4 characters of the SHA are enough)")
    String to;

    @Option(names = "--vm", paramLabel = "VM", description = "only this VM (repeatable; default: all of the app)")
    List<String> vms = new ArrayList<>();

    @Option(
            names = "--timeout",
            paramLabel = "DURATION",
            defaultValue = "30m",
            description = "how long the restores may take, such as 10m or 1h (default: ${DEFAULT-VALUE})")
    String timeout;

    @Option(names = "--json", description = "print the engine's JSON answer instead of a table")
    boolean json;

    @Mixin
    HookCommand.EngineEndpoint engine;

    @Override
    public Integer call() {
        RestorePointSelector.PreDeploy tag;
        try {
            tag = RestorePointSelector.parseTag(to);
        } catch (IllegalArgumentException e) {
            return fail(Main.EXIT_INVALID, "--to: " + e.getMessage());
        }
        if (tag.app().isPresent() && app != null && !tag.app().get().equals(app)) {
            return fail(Main.EXIT_INVALID, "--app " + app + " and --to " + to + " name different apps");
        }
        Optional<String> theApp = tag.app().or(() -> Optional.ofNullable(app));
        if (theApp.isEmpty()) {
            return fail(Main.EXIT_INVALID, "name the app: --app APP, or --to pre-deploy:APP@SHA");
        }
        Optional<Duration> limit = HookCommand.PreDeploy.parseTimeout(timeout);
        if (limit.isEmpty()) {
            return fail(Main.EXIT_INVALID, "--timeout must be a duration from 1s to 1h such as 90s or 30m");
        }
        RollbackRequest request;
        try {
            request = new RollbackRequest(theApp.get(), tag.commit(), vms);
        } catch (InvalidHookException e) {
            return fail(Main.EXIT_INVALID, "--" + e.field() + ": " + e.getMessage());
        }
        return engine.command(
                HookServer.ROLLBACK_PATH,
                HookJson.rollbackRequest(request),
                limit.get(),
                "the VMs may not have been rolled back; check the engine's log",
                json,
                RollbackCommand::printTable);
    }

    /** The engine's answer as a table: per VM the point, its capture time, how long it took, the new images. */
    private static void printTable(JsonNode answer) {
        System.out.printf("%-20s %-32s %-26s %7s  %s%n", "VM", "RESTORE POINT", "CAPTURED", "TOOK", "IMAGES");
        for (JsonNode vm : answer.path("vms")) {
            List<String> images = new ArrayList<>();
            vm.path("images")
                    .fields()
                    .forEachRemaining(
                            e -> images.add(e.getKey() + "=" + e.getValue().asText()));
            System.out.printf(
                    "%-20s %-32s %-26s %6.1fs  %s%n",
                    vm.path("vm").asText(),
                    vm.path("restorePointId").asText(),
                    vm.path("capturedAt").asText(),
                    vm.path("elapsedMs").asLong() / 1000.0,
                    String.join(" ", images));
        }
    }

    /** Ends the command: {@link Main#execute} prints the message (with --json, the JSON error) and exits with code. */
    private static int fail(int code, String message) {
        throw new CommandFailure(code, message);
    }
}
