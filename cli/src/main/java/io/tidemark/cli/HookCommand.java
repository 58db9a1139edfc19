package io.tidemark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.PermanentException;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.policies.PolicyParser;
import io.tidemark.scheduler.hook.HookJson;
import io.tidemark.scheduler.hook.HookSecret;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.scheduler.hook.HookSignature;
import io.tidemark.scheduler.hook.InvalidHookException;
import io.tidemark.scheduler.hook.PostDeployReport;
import io.tidemark.scheduler.hook.PreDeployHook;
import io.tidemark.scheduler.hook.WaitLevel;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "hook",
        description = "Fire a hook of a running engine, as a CI/CD pipeline does.",
        exitCodeOnInvalidInput = Main.EXIT_INVALID,
        subcommands = {HookCommand.PreDeploy.class, HookCommand.PostDeploy.class})
final class HookCommand {

    @Command(
            mixinStandardHelpOptions = true,
            name = "pre-deploy",
            exitCodeOnInvalidInput = Main.EXIT_INVALID,
            description = {
                "Snapshot the VMs of an app before it is deployed (a pipeline step).",
                "Snapshot the VMs of APP before it is deployed and wait until every snapshot is captured (the",
                "default; fast), committed or replicated. Talks to the engine's hook endpoint (see",
                "docs/runbooks/pre-deploy-hook.md), signing the request with the shared secret from",
                "--secret-file or $" + EngineConfig.HooksConfig.DEFAULT_SECRET_ENV + ". The same APP, SHA and",
                "PIPELINE again reuse the same jobs, so a retried pipeline step makes no extra restore points.",
                "Exit 0 only when the wait level is reached: anything else must stop the deploy."
            },
            footerHeading = "%nExample, as the step before the deploy of a pipeline:%n",
            footer = {
                "  tidemark hook pre-deploy --app shop --commit $GIT_SHA --pipeline $CI_PIPELINE_ID \\",
                "      --url http://hv1:9465 --secret-file /run/secrets/tidemark-hook --wait committed || exit 1"
            },
            exitCodeListHeading = "%nExit codes:%n",
            exitCodeList = {
                "0:every VM reached the wait level; deploy",
                "1:invalid input (a flag, a missing secret, a request the engine calls malformed)",
                "2:a snapshot failed, or the engine refused the request (signature, unknown app)",
                "3:timed out, or the engine is unreachable or unavailable; retrying may succeed"
            })
    static final class PreDeploy implements Callable<Integer> {

        @Option(
                names = "--app",
                paramLabel = "APP",
                description = "the app, as policies name it in triggers.pre-deploy.apps")
        String app;

        @Option(names = "--commit", paramLabel = "SHA", description = "the revision being deployed")
        String commit;

        @Option(names = "--pipeline", paramLabel = "P", description = "the pipeline run (its id or URL)")
        String pipeline;

        @Option(
                names = "--wait",
                paramLabel = "LEVEL",
                defaultValue = "captured",
                description = "captured | committed | replicated (default: ${DEFAULT-VALUE})")
        String wait;

        @Option(
                names = "--timeout",
                paramLabel = "DURATION",
                defaultValue = "10m",
                description = "how long to wait, such as 90s, 10m or 1h (at most 1h; default: ${DEFAULT-VALUE})")
        String timeout;

        @Mixin
        EngineEndpoint engine;

        @Option(names = "--json", description = "print the engine's JSON answer instead of a table")
        boolean json;

        @Override
        public Integer call() {
            Optional<String> missing = app == null
                    ? Optional.of("--app")
                    : commit == null
                            ? Optional.of("--commit")
                            : pipeline == null ? Optional.of("--pipeline") : Optional.empty();
            if (missing.isPresent()) {
                return invalid(missing.get() + " is required: tidemark hook pre-deploy --app APP --commit SHA"
                        + " --pipeline P [--wait captured|committed|replicated] [--timeout 10m]");
            }
            Optional<WaitLevel> level = WaitLevel.parse(wait);
            if (level.isEmpty()) {
                return invalid("--wait must be one of " + WaitLevel.wireNames() + ", got '" + wait + "'");
            }
            Optional<Duration> limit = parseTimeout(timeout);
            if (limit.isEmpty()) {
                return invalid(
                        "--timeout must be a duration from 1s to 1h such as 90s, 10m or 1h, got '" + timeout + "'");
            }
            PreDeployHook hook;
            try {
                hook = new PreDeployHook(app, commit, pipeline, level);
            } catch (InvalidHookException e) {
                return invalid("--" + e.field() + ": " + e.getMessage());
            }
            byte[] body = HookJson.request(hook, level.get(), limit.get());
            // the engine answers 504 at the limit
            return report(engine.post(HookServer.PATH, body, limit.get().plusSeconds(30), "do not deploy"));
        }

        private int report(HttpResponse<String> response) {
            int status = response.statusCode();
            Optional<JsonNode> answer = parse(response.body());
            String message = answer.map(a -> a.path("message").asText(""))
                    .filter(m -> !m.isEmpty())
                    .orElse("HTTP " + status);
            if (json && status == 200) {
                System.out.println(response.body());
            } else if (!json) {
                answer.filter(a -> a.has("vms")).ifPresent(a -> HookOutcomes.print(a, false));
            }
            if (status == 200) {
                if (!json) {
                    System.out.println(message);
                }
                return 0;
            }
            return engine.refusal(status, answer, message, "do not deploy");
        }

        static Optional<Duration> parseTimeout(String text) {
            if (text == null || text.isBlank()) {
                return Optional.empty();
            }
            Duration d;
            try {
                d = PolicyParser.parseDuration(text.strip()); // the one duration syntax: 90s, 5m, 1h30m
            } catch (IllegalArgumentException e) {
                return Optional.empty();
            }
            return d.isZero() || d.compareTo(HookJson.MAX_TIMEOUT) > 0 ? Optional.empty() : Optional.of(d);
        }
    }

    private static int invalid(String message) {
        return fail(Main.EXIT_INVALID, message);
    }

    /** Ends the command: {@link Main#execute} prints the message (with --json, the JSON error) and exits with code. */
    private static int fail(int code, String message) {
        throw new CommandFailure(code, message);
    }

    /** Where the engine's hook endpoint is and the secret that signs requests to it. */
    static final class EngineEndpoint {

        @Option(
                names = "--url",
                defaultValue = "http://" + HookServer.DEFAULT_ADDRESS,
                description = "the engine's hook endpoint (default: ${DEFAULT-VALUE})")
        String url;

        @Option(
                names = "--secret-file",
                paramLabel = "FILE",
                description =
                        "file holding the hook secret (default: $" + EngineConfig.HooksConfig.DEFAULT_SECRET_ENV + ")")
        Path secretFile;

        private final Clock clock = Clock.systemUTC();

        /**
         * POSTs {@code body}, signed, to {@code path} of the engine and returns the answer.
         *
         * @param consequence what the caller's pipeline must do when the engine cannot be asked,
         *     such as {@code do not deploy}
         * @throws CommandFailure with exit 1 for a bad --url or secret, 3 when the engine cannot be reached
         */
        HttpResponse<String> post(String path, byte[] body, Duration timeout, String consequence) {
            URI endpoint;
            HookSecret secret;
            try {
                endpoint = endpoint(path);
                secret = secretFile != null
                        ? HookSecret.fromFile(secretFile)
                        : HookSecret.fromEnv(EngineConfig.HooksConfig.DEFAULT_SECRET_ENV, System.getenv());
            } catch (PermanentException e) {
                throw new CommandFailure(Main.EXIT_INVALID, e.getMessage());
            }
            String timestamp = String.valueOf(clock.instant().getEpochSecond());
            HttpRequest request = HttpRequest.newBuilder(endpoint)
                    .timeout(timeout)
                    .header("Content-Type", "application/json")
                    .header(HookSignature.TIMESTAMP_HEADER, timestamp)
                    .header(HookSignature.SIGNATURE_HEADER, HookSignature.sign(secret, timestamp, body))
                    .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                    .build();
            return send(request, endpoint, timeout, consequence);
        }

        /** Sends {@code request}; a timeout, a refused or lost connection is a retriable failure that says what next. */
        private static HttpResponse<String> send(
                HttpRequest request, URI endpoint, Duration timeout, String consequence) {
            try {
                return HttpClient.newBuilder()
                        .connectTimeout(Duration.ofSeconds(10))
                        .build()
                        .send(request, HttpResponse.BodyHandlers.ofString());
            } catch (HttpTimeoutException e) {
                throw new CommandFailure(
                        Main.EXIT_RETRIABLE,
                        "the engine at " + endpoint + " did not answer within " + timeout.toSeconds() + " s; "
                                + consequence + "; check the engine's log");
            } catch (ConnectException e) {
                throw new CommandFailure(
                        Main.EXIT_RETRIABLE,
                        "cannot reach the engine at " + endpoint + " (" + e.getMessage() + "); " + consequence
                                + "; check that `tidemark run` runs with the hook endpoint on (hooks: in the engine"
                                + " config) and that --url is right");
            } catch (IOException e) {
                throw new CommandFailure(
                        Main.EXIT_RETRIABLE,
                        "lost the connection to the engine at " + endpoint + " (" + e.getMessage() + "); " + consequence
                                + "; run the hook again (it is idempotent)");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CommandFailure(Main.EXIT_RETRIABLE, "interrupted; " + consequence);
            }
        }

        /**
         * POSTs a command and turns the engine's answer into an exit code: 0 for 200 (after {@code
         * table} printed the answer, unless {@code json} prints it raw), 1 for a refused request, 2 for
         * a refused signature or a failed command, 3 when the engine is unavailable.
         */
        int command(
                String path,
                byte[] body,
                Duration timeout,
                String consequence,
                boolean json,
                java.util.function.Consumer<JsonNode> table) {
            HttpResponse<String> response = post(path, body, timeout, consequence);
            Optional<JsonNode> answer = parse(response.body());
            String message = answer.map(a -> a.path("message").asText(""))
                    .filter(m -> !m.isEmpty())
                    .orElse("HTTP " + response.statusCode());
            if (json && response.statusCode() == 200) {
                System.out.println(response.body());
            }
            if (response.statusCode() == 200) {
                if (!json) {
                    table.accept(answer.orElseThrow());
                    System.out.println(message);
                }
                return 0;
            }
            return refusal(response.statusCode(), answer, message, consequence);
        }

        /**
         * Ends the command for an answer other than 200, saying why, with exit 1 when the engine
         * calls the request malformed, 2 for a refused signature, an unknown app or VM, a missing
         * endpoint or a failed command, 3 when the engine is unavailable or timed out. The answer
         * becomes the {@code detail} of the JSON error.
         *
         * @param message the answer's {@code message}, or the HTTP status in words
         * @param consequence what the caller's pipeline must do, such as {@code do not deploy}
         * @return never: it always throws (callers {@code return} it to end their method)
         * @throws CommandFailure always
         */
        int refusal(int status, Optional<JsonNode> answer, String message, String consequence) {
            int code =
                    switch (status) {
                        case 400 -> Main.EXIT_INVALID;
                        case 401, 404, 502, 422 -> Main.EXIT_PERMANENT;
                        case 503, 504 -> Main.EXIT_RETRIABLE;
                        default -> status >= 500 ? Main.EXIT_RETRIABLE : Main.EXIT_PERMANENT;
                    };
            String why =
                    switch (status) {
                        case 400 -> "the engine refused the request as malformed: " + message;
                        case 401 ->
                            "the engine refused the signature: " + message + " (check that --secret-file or $"
                                    + EngineConfig.HooksConfig.DEFAULT_SECRET_ENV
                                    + " holds the engine's hook secret and that this machine's clock is right)";
                        case 404 ->
                            answer.map(a -> a.path("error").asText("not-found"))
                                            .orElse("not-found")
                                            .equals("not-found")
                                    ? "no hook endpoint at " + url + " (" + message + "); check --url"
                                    : message;
                        case 502, 422, 503, 504 -> message;
                        default -> "unexpected answer from the engine: " + message + "; " + consequence;
                    };
            throw new CommandFailure(code, why, answer); // with --json, the answer is the error's detail
        }

        private URI endpoint(String path) {
            PermanentException bad = new PermanentException("--url must be http://HOST:PORT or https://HOST:PORT,"
                    + " such as http://" + HookServer.DEFAULT_ADDRESS + ", got '" + url + "'");
            URI base;
            try {
                base = URI.create(url.endsWith("/") ? url.substring(0, url.length() - 1) : url);
            } catch (IllegalArgumentException e) {
                throw bad;
            }
            if (!"http".equals(base.getScheme()) && !"https".equals(base.getScheme()) || base.getHost() == null) {
                throw bad;
            }
            return URI.create(base + path);
        }
    }

    @Command(
            mixinStandardHelpOptions = true,
            name = "post-deploy",
            exitCodeOnInvalidInput = Main.EXIT_INVALID,
            description = {
                "Tell the engine how a deploy ended, to pin or expire its pre-deploy points.",
                "Tell the engine how the deploy of APP at SHA ended. On failure its pre-deploy restore points are",
                "pinned at every location (prune keeps them; `tidemark rollback --app APP --to pre-deploy:SHA`",
                "returns the VMs to them); on success they are expired (the next prune removes them unless",
                "they are the newest or not yet replicated). Signed like pre-deploy; idempotent.",
                "",
                "Example, as the last step of a pipeline:",
                "  tidemark hook post-deploy --app shop --commit $GIT_SHA \\",
                "      --outcome $([ $ok ] && echo success || echo failure)"
            },
            exitCodeListHeading = "%nExit codes:%n",
            exitCodeList = {
                "0:the points were marked",
                "1:invalid input (a flag, a missing secret)",
                "2:the engine refused the request, or no pre-deploy point of that deploy exists",
                "3:the engine is unreachable or unavailable; run it again"
            })
    static final class PostDeploy implements Callable<Integer> {

        @Option(names = "--app", paramLabel = "APP", required = true, description = "the app deployed")
        String app;

        @Option(names = "--commit", paramLabel = "SHA", required = true, description = "the revision deployed")
        String commit;

        @Option(
                names = "--pipeline",
                paramLabel = "P",
                description = "only the points of this pipeline run (default: every run that deployed SHA)")
        String pipeline;

        @Option(
                names = "--outcome",
                paramLabel = "OUTCOME",
                required = true,
                description = "success (expire the pre-deploy points) or failure (pin them)")
        String outcome;

        @Option(names = "--json", description = "print the engine's JSON answer instead of a table")
        boolean json;

        @Mixin
        EngineEndpoint engine;

        @Override
        public Integer call() {
            Optional<PostDeployReport.Outcome> parsed = PostDeployReport.Outcome.parse(outcome);
            if (parsed.isEmpty()) {
                return invalid("--outcome must be success or failure, got '" + outcome + "'");
            }
            PostDeployReport report;
            try {
                report = new PostDeployReport(app, commit, Optional.ofNullable(pipeline), parsed.get());
            } catch (InvalidHookException e) {
                return invalid("--" + e.field() + ": " + e.getMessage());
            }
            return engine.command(
                    HookServer.POST_DEPLOY_PATH,
                    HookJson.postDeployRequest(report),
                    Duration.ofMinutes(2),
                    "the points keep their marks",
                    json,
                    answer -> {
                        System.out.printf("%-12s %-20s %-32s %s%n", "LOCATION", "VM", "RESTORE POINT", "MARK");
                        for (JsonNode p : answer.path("points")) {
                            System.out.printf(
                                    "%-12s %-20s %-32s %s%n",
                                    p.path("location").asText(),
                                    p.path("vm").asText(),
                                    p.path("restorePointId").asText(),
                                    p.path("mark").asText());
                        }
                    });
        }
    }

    static Optional<JsonNode> parse(String body) {
        try {
            JsonNode n = Json.mapper().readTree(body);
            return n != null && n.isObject() ? Optional.of(n) : Optional.empty();
        } catch (IOException e) { // not from Tidemark (a proxy's error page): reported by status
            return Optional.empty();
        }
    }
}
