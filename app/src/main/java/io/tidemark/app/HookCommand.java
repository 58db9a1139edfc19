package io.tidemark.app;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.PermanentException;
import io.tidemark.format.Json;
import io.tidemark.scheduler.hook.HookJson;
import io.tidemark.scheduler.hook.HookSecret;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.scheduler.hook.HookSignature;
import io.tidemark.scheduler.hook.InvalidHookException;
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
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "hook",
        description = "Fire a hook of a running engine, as a CI/CD pipeline does.",
        exitCodeOnInvalidInput = Main.EXIT_INVALID,
        subcommands = {HookCommand.PreDeploy.class})
final class HookCommand {

    @Command(
            name = "pre-deploy",
            exitCodeOnInvalidInput = Main.EXIT_INVALID,
            description = {
                "Snapshot the VMs of APP before it is deployed and wait until every snapshot is captured (the",
                "default; fast), committed or replicated. Talks to the engine's hook endpoint (see",
                "docs/runbooks/pre-deploy-hook.md), signing the request with the shared secret from",
                "--secret-file or $" + EngineConfig.HooksConfig.DEFAULT_SECRET_ENV + ". The same APP, SHA and",
                "PIPELINE again reuse the same jobs, so a retried pipeline step makes no extra restore points.",
                "Exit 0 only when the wait level is reached: anything else must stop the deploy."
            },
            exitCodeListHeading = "%nExit codes:%n",
            exitCodeList = {
                "0:every VM reached the wait level; deploy",
                "1:invalid input (a flag, a missing secret, a request the engine calls malformed)",
                "2:a snapshot failed, or the engine refused the request (signature, unknown app)",
                "3:timed out, or the engine is unreachable or unavailable; retrying may succeed"
            })
    static final class PreDeploy implements Callable<Integer> {

        private static final Pattern TIMEOUT = Pattern.compile("(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?");

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

        @Option(names = "--json", description = "print the engine's JSON answer instead of a table")
        boolean json;

        private final Clock clock = Clock.systemUTC();

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
            URI endpoint;
            HookSecret secret;
            try {
                hook = new PreDeployHook(app, commit, pipeline, level);
                endpoint = endpoint(url);
                secret = secretFile != null
                        ? HookSecret.fromFile(secretFile)
                        : HookSecret.fromEnv(EngineConfig.HooksConfig.DEFAULT_SECRET_ENV, System.getenv());
            } catch (InvalidHookException e) {
                return invalid("--" + e.field() + ": " + e.getMessage());
            } catch (PermanentException e) {
                return invalid(e.getMessage());
            }
            byte[] body = HookJson.request(hook, level.get(), limit.get());
            String timestamp = String.valueOf(clock.instant().getEpochSecond());
            HttpRequest request = HttpRequest.newBuilder(endpoint)
                    .timeout(limit.get().plusSeconds(30)) // the engine answers 504 at the limit
                    .header("Content-Type", "application/json")
                    .header(HookSignature.TIMESTAMP_HEADER, timestamp)
                    .header(HookSignature.SIGNATURE_HEADER, HookSignature.sign(secret, timestamp, body))
                    .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                    .build();
            HttpResponse<String> response;
            try {
                response = HttpClient.newBuilder()
                        .connectTimeout(Duration.ofSeconds(10))
                        .build()
                        .send(request, HttpResponse.BodyHandlers.ofString());
            } catch (HttpTimeoutException e) {
                return fail(
                        Main.EXIT_RETRIABLE,
                        "the engine at " + endpoint + " did not answer within "
                                + limit.get().plusSeconds(30).toSeconds()
                                + " s; do not deploy; check the engine's log");
            } catch (ConnectException e) {
                return fail(
                        Main.EXIT_RETRIABLE,
                        "cannot reach the engine at " + endpoint + " (" + e.getMessage()
                                + "); do not deploy; check that `tidemark run` runs with the hook endpoint on (hooks: in"
                                + " the engine config) and that --url is right");
            } catch (IOException e) {
                return fail(
                        Main.EXIT_RETRIABLE,
                        "lost the connection to the engine at " + endpoint + " (" + e.getMessage()
                                + "); do not deploy; run the hook again (it reuses the same jobs)");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return fail(Main.EXIT_RETRIABLE, "interrupted; do not deploy");
            }
            return report(response);
        }

        private int report(HttpResponse<String> response) {
            int status = response.statusCode();
            Optional<JsonNode> answer = parse(response.body());
            String message = answer.map(a -> a.path("message").asText(""))
                    .filter(m -> !m.isEmpty())
                    .orElse("HTTP " + status);
            if (json) {
                System.out.println(response.body());
            } else {
                answer.filter(a -> a.has("vms")).ifPresent(PreDeploy::printTable);
            }
            return switch (status) {
                case 200 -> {
                    if (!json) {
                        System.out.println(message);
                    }
                    yield 0;
                }
                case 400 -> fail(Main.EXIT_INVALID, "the engine refused the request as malformed: " + message);
                case 401 ->
                    fail(
                            Main.EXIT_PERMANENT,
                            "the engine refused the signature: " + message + " (check that --secret-file or $"
                                    + EngineConfig.HooksConfig.DEFAULT_SECRET_ENV
                                    + " holds the engine's hook secret and that this machine's clock is right)");
                case 404 ->
                    fail(
                            Main.EXIT_PERMANENT,
                            answer.map(a -> a.path("error").asText()).orElse("").equals("unknown-app")
                                    ? message
                                    : "no hook endpoint at " + url + " (" + message + "); check --url");
                case 502, 422 -> fail(Main.EXIT_PERMANENT, message);
                case 503, 504 -> fail(Main.EXIT_RETRIABLE, message);
                default ->
                    fail(
                            status >= 500 ? Main.EXIT_RETRIABLE : Main.EXIT_PERMANENT,
                            "unexpected answer from the engine: " + message + "; do not deploy");
            };
        }

        private static void printTable(JsonNode answer) {
            System.out.printf(
                    "%-20s %-12s %-32s %10s %10s %10s%n",
                    "VM", "HOST", "RESTORE POINT", "CAPTURED", "COMMITTED", "REPLICATED");
            for (JsonNode vm : answer.path("vms")) {
                System.out.printf(
                        "%-20s %-12s %-32s %10s %10s %10s%n",
                        vm.path("vm").asText(),
                        vm.path("host").asText(),
                        vm.path("restorePointId").asText("-"),
                        after(vm, "capturedAfterMs"),
                        after(vm, "committedAfterMs"),
                        vm.path("targets").isEmpty() ? "n/a" : after(vm, "replicatedAfterMs"));
            }
        }

        private static String after(JsonNode vm, String field) {
            return vm.has(field)
                    ? String.format(Locale.ROOT, "%.1f s", vm.path(field).asLong() / 1000.0)
                    : "-";
        }

        private static Optional<JsonNode> parse(String body) {
            try {
                JsonNode n = Json.mapper().readTree(body);
                return n != null && n.isObject() ? Optional.of(n) : Optional.empty();
            } catch (IOException e) { // not from Tidemark (a proxy's error page): reported by status
                return Optional.empty();
            }
        }

        static Optional<Duration> parseTimeout(String text) {
            Matcher m = TIMEOUT.matcher(text == null ? "" : text);
            if (text == null || text.isEmpty() || !m.matches()) {
                return Optional.empty();
            }
            long seconds = 0;
            long[] unit = {3600, 60, 1};
            for (int i = 0; i < unit.length; i++) {
                if (m.group(i + 1) != null) {
                    if (m.group(i + 1).length() > 6) {
                        return Optional.empty();
                    }
                    seconds += Long.parseLong(m.group(i + 1)) * unit[i];
                }
            }
            Duration d = Duration.ofSeconds(seconds);
            return d.isZero() || d.compareTo(HookJson.MAX_TIMEOUT) > 0 ? Optional.empty() : Optional.of(d);
        }

        private static URI endpoint(String url) {
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
            return URI.create(base + HookServer.PATH);
        }

        private static int invalid(String message) {
            return fail(Main.EXIT_INVALID, message);
        }

        private static int fail(int code, String message) {
            System.err.println("tidemark: " + message);
            return code;
        }
    }
}
