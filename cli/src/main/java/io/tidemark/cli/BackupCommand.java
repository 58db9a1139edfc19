package io.tidemark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.scheduler.hook.BackupRequest;
import io.tidemark.scheduler.hook.HookJson;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.scheduler.hook.InvalidHookException;
import io.tidemark.scheduler.hook.WaitLevel;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "backup",
        exitCodeOnInvalidInput = Main.EXIT_INVALID,
        description = {
            "Back up one VM now through the running engine and wait for its restore point.",
            "",
            "The engine publishes one snapshot job (trigger manual) for the VM under the policy that selects it",
            "(or --policy), and this command waits until the point is captured (the default), committed or",
            "replicated. It goes through the engine's hook endpoint, signed with the hook secret like `hook",
            "pre-deploy` (see docs/runbooks/backup-now.md). The same --request-id again publishes no second",
            "job: it waits for the first one. Exit 0 only when the wait level is reached.",
            "",
            "Example:",
            "  tidemark backup --vm db-1 --wait committed --request-id change-4711 \\",
            "      --secret-file /etc/tidemark/hook"
        },
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:the VM's point reached the wait level",
            "1:invalid input (a flag, a missing secret, a request the engine calls malformed)",
            "2:the snapshot failed, or the engine refused the request (signature, unknown VM, policy)",
            "3:timed out, or the engine is unreachable or unavailable; run it again with the same --request-id"
        })
final class BackupCommand implements Callable<Integer> {

    @Option(names = "--vm", paramLabel = "VM", required = true, description = "the VM to back up")
    String vm;

    @Option(
            names = "--policy",
            paramLabel = "POLICY",
            description = "the policy to run under; it must select the VM (default: the first by name that does)")
    String policy;

    @Option(
            names = "--wait",
            paramLabel = "LEVEL",
            defaultValue = "captured",
            description = "captured | committed | replicated (default: ${DEFAULT-VALUE})")
    String wait;

    @Option(
            names = "--request-id",
            paramLabel = "ID",
            description = "idempotency key: the same ID again waits for the same job (default: a new random one)")
    String requestId;

    @Option(
            names = "--timeout",
            paramLabel = "DURATION",
            defaultValue = "10m",
            description = "how long to wait, such as 90s, 10m or 1h (at most 1h; default: ${DEFAULT-VALUE})")
    String timeout;

    @Mixin
    HookCommand.EngineEndpoint engine;

    @Option(names = "--json", description = "print the engine's JSON answer instead of a table")
    boolean json;

    @Override
    public Integer call() {
        Optional<WaitLevel> level = WaitLevel.parse(wait);
        if (level.isEmpty()) {
            return fail(Main.EXIT_INVALID, "--wait must be one of " + WaitLevel.wireNames() + ", got '" + wait + "'");
        }
        Optional<Duration> limit = HookCommand.PreDeploy.parseTimeout(timeout);
        if (limit.isEmpty()) {
            return fail(
                    Main.EXIT_INVALID,
                    "--timeout must be a duration from 1s to 1h such as 90s, 10m or 1h, got '" + timeout + "'");
        }
        BackupRequest request;
        try {
            request = new BackupRequest(
                    vm,
                    Optional.ofNullable(policy),
                    requestId != null ? requestId : UUID.randomUUID().toString(),
                    level.get(),
                    limit.get());
        } catch (InvalidHookException e) {
            String flag = e.field().equals("requestId") ? "request-id" : e.field();
            return fail(Main.EXIT_INVALID, "--" + flag + ": " + e.getMessage());
        }
        String consequence = "the job may still run; wait for it with --request-id " + request.requestId();
        // the engine answers 504 at the limit
        HttpResponse<String> response = engine.post(
                HookServer.BACKUP_PATH,
                HookJson.backupRequest(request),
                limit.get().plusSeconds(30),
                consequence);
        Optional<JsonNode> answer = HookCommand.parse(response.body());
        String message = answer.map(a -> a.path("message").asText(""))
                .filter(m -> !m.isEmpty())
                .orElse("HTTP " + response.statusCode());
        if (json && response.statusCode() == 200) {
            System.out.println(response.body());
        } else if (!json) {
            answer.filter(a -> a.has("vms")).ifPresent(a -> HookOutcomes.print(a, true));
        }
        if (response.statusCode() == 200) {
            if (!json) {
                System.out.println(message);
            }
            return 0;
        }
        if (response.statusCode() == 404
                && answer.map(a -> a.path("error").asText()).orElse("").equals("not-found")) {
            throw new CommandFailure(
                    Main.EXIT_PERMANENT,
                    "the engine at " + engine.url + " has no backup endpoint (" + message
                            + "); upgrade the engine or check --url",
                    answer);
        }
        return engine.refusal(response.statusCode(), answer, message, consequence);
    }

    /** Ends the command: {@link Main#execute} prints the message (with --json, the JSON error) and exits with code. */
    private static int fail(int code, String message) {
        throw new CommandFailure(code, message);
    }
}
