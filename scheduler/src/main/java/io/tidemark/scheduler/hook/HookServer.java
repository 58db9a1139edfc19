package io.tidemark.scheduler.hook;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.concurrent.DaemonThreads;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP entry point of the deploy hooks: {@code POST /hooks/pre-deploy} with a {@link
 * HookJson} request body, signed as {@link HookSignature} describes, submits the hook through the
 * {@link HookService} and answers when the wait ends; {@code POST /hooks/post-deploy} (signed the
 * same way) hands a {@link PostDeployReport} to the {@link PostDeployHandler} and answers with the
 * restore points it pinned or expired (200); {@code POST /hooks/backup} (signed the same way) with a
 * {@link HookJson#parseBackup backup request} publishes one manual snapshot job through {@link
 * HookService#backup} and answers like pre-deploy when the wait ends (404 {@code unknown-vm} naming
 * the VMs the engine knows; 422 {@code policy-mismatch} naming the policies that select the VM).
 *
 * <table>
 *   <caption>Responses (bodies are JSON)</caption>
 *   <tr><th>status</th><th>when</th></tr>
 *   <tr><td>200</td><td>every VM reached the wait level (a {@link HookJson} result)</td></tr>
 *   <tr><td>400</td><td>the body is not valid JSON or a field is missing or wrong (named)</td></tr>
 *   <tr><td>401</td><td>signature or timestamp header missing, bad signature, timestamp more than
 *       {@link #MAX_CLOCK_SKEW} from the server's clock, or a replayed (timestamp, signature)</td></tr>
 *   <tr><td>404</td><td>no policy lists the app (or a path other than {@link #PATH}); for {@link
 *       #POST_DEPLOY_PATH}: no pre-deploy restore point of that deploy exists; for {@link
 *       #BACKUP_PATH}: the engine knows no such VM</td></tr>
 *   <tr><td>405</td><td>a method other than POST</td></tr>
 *   <tr><td>413</td><td>a body larger than {@link #MAX_BODY_BYTES}</td></tr>
 *   <tr><td>422</td><td>the policies that list the app select no VM the inventory knows; for {@link
 *       #BACKUP_PATH}: no policy, or not the named one, selects the VM</td></tr>
 *   <tr><td>502</td><td>a snapshot job failed (a result with {@code failure})</td></tr>
 *   <tr><td>503</td><td>the bus or the inventory is unavailable; retrying later may succeed</td></tr>
 *   <tr><td>504</td><td>the timeout passed first (a result saying which VMs lag)</td></tr>
 * </table>
 *
 * <p>Nothing is published for a request refused with a 4xx status. Each request is served on a
 * thread of its own (up to {@link #THREADS} at once), so a long wait does not hold up others. The
 * secret is never logged.
 */
public final class HookServer implements AutoCloseable {

    /** The path of the pre-deploy endpoint. */
    public static final String PATH = "/hooks/pre-deploy";

    /** The path of the post-deploy endpoint. */
    public static final String POST_DEPLOY_PATH = "/hooks/post-deploy";

    /** The path of the rollback endpoint. */
    public static final String ROLLBACK_PATH = "/hooks/rollback";

    /** The path of the manual backup endpoint ("back up this VM now"). */
    public static final String BACKUP_PATH = "/hooks/backup";

    /** Where the endpoint listens unless configured otherwise. */
    public static final String DEFAULT_ADDRESS = "127.0.0.1:9465";

    /** How far a request's timestamp may be from the server's clock, either way. */
    public static final Duration MAX_CLOCK_SKEW = Duration.ofMinutes(5);

    /** The largest request body accepted. */
    public static final int MAX_BODY_BYTES = 64 * 1024;

    /** How many requests are served at once; more wait for a thread. */
    public static final int THREADS = 64;

    private static final Logger log = LoggerFactory.getLogger(HookServer.class);
    private static final Pattern UNIX_SECONDS = Pattern.compile("\\d{1,12}");

    private final HttpServer server;
    private final ExecutorService executor;
    private final HookService service;
    private final Optional<PostDeployHandler> postDeploy;
    private final Optional<RollbackHandler> rollback;
    private final HookSecret secret;
    private final Clock clock;
    /** (timestamp/signature) → timestamp of the authenticated requests inside the skew window. */
    private final Map<String, Long> seen = new ConcurrentHashMap<>();

    private HookServer(
            HttpServer server,
            ExecutorService executor,
            HookService service,
            Optional<PostDeployHandler> postDeploy,
            Optional<RollbackHandler> rollback,
            HookSecret secret,
            Clock clock) {
        this.server = server;
        this.executor = executor;
        this.service = service;
        this.postDeploy = postDeploy;
        this.rollback = rollback;
        this.secret = secret;
        this.clock = clock;
    }

    /**
     * Starts serving on {@code address}.
     *
     * @throws PermanentException if the address cannot be bound
     */
    public static HookServer start(InetSocketAddress address, HookService service, HookSecret secret, Clock clock) {
        return start(address, service, Optional.empty(), Optional.empty(), secret, clock);
    }

    /**
     * Starts serving on {@code address}, with the post-deploy and rollback endpoints when their
     * handlers are given.
     *
     * @throws PermanentException if the address cannot be bound
     */
    public static HookServer start(
            InetSocketAddress address,
            HookService service,
            Optional<PostDeployHandler> postDeploy,
            Optional<RollbackHandler> rollback,
            HookSecret secret,
            Clock clock) {
        Objects.requireNonNull(service, "service");
        Objects.requireNonNull(postDeploy, "postDeploy");
        Objects.requireNonNull(rollback, "rollback");
        Objects.requireNonNull(secret, "secret");
        Objects.requireNonNull(clock, "clock");
        HttpServer http;
        try {
            http = HttpServer.create(address, 0);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot serve the pre-deploy hook on " + address + ": " + e.getMessage()
                            + "; choose another address with hooks.address in the engine config",
                    e);
        }
        ExecutorService executor = Executors.newFixedThreadPool(THREADS, DaemonThreads.numbered("hook-http-"));
        HookServer server = new HookServer(http, executor, service, postDeploy, rollback, secret, clock);
        http.setExecutor(executor);
        http.createContext("/", server::serve);
        http.start();
        return server;
    }

    /**
     * {@code host:port} as a socket address.
     *
     * @throws PermanentException if it is not of that form
     */
    public static InetSocketAddress address(String hostPort) {
        int colon = hostPort == null ? -1 : hostPort.lastIndexOf(':');
        if (colon <= 0 || !hostPort.substring(colon + 1).matches("\\d{1,5}")) {
            throw new PermanentException("pre-deploy hook address '" + hostPort + "' must be HOST:PORT, e.g. "
                    + DEFAULT_ADDRESS + " (hooks.address in the engine config)");
        }
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    /** The address it listens on (with the actual port when 0 was asked for). */
    public InetSocketAddress address() {
        return server.getAddress();
    }

    public int port() {
        return server.getAddress().getPort();
    }

    private void serve(HttpExchange exchange) throws IOException {
        try {
            respond(exchange);
        } catch (RuntimeException e) { // a bug: answer 500 and keep serving
            log.error("pre-deploy hook: internal error serving {}", exchange.getRequestURI(), e);
            send(exchange, 500, HookJson.error("internal", "internal error; see the engine log"));
        } finally {
            exchange.close();
        }
    }

    private void respond(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getPath();
        boolean post = POST_DEPLOY_PATH.equals(path) && postDeploy.isPresent();
        boolean back = ROLLBACK_PATH.equals(path) && rollback.isPresent();
        boolean backup = BACKUP_PATH.equals(path);
        if (!PATH.equals(path) && !post && !back && !backup) {
            send(
                    exchange,
                    404,
                    HookJson.error(
                            "not-found",
                            "no such endpoint; POST to " + PATH + ", " + BACKUP_PATH
                                    + postDeploy
                                            .map(h -> ", " + POST_DEPLOY_PATH)
                                            .orElse("")
                                    + rollback.map(h -> ", " + ROLLBACK_PATH).orElse("")));
            return;
        }
        if (!"POST".equals(exchange.getRequestMethod())) {
            exchange.getResponseHeaders().set("Allow", "POST");
            send(exchange, 405, HookJson.error("method-not-allowed", "use POST"));
            return;
        }
        Optional<byte[]> body = readBody(exchange.getRequestBody());
        if (body.isEmpty()) {
            send(exchange, 413, HookJson.error("too-large", "the body is larger than " + MAX_BODY_BYTES + " bytes"));
            return;
        }
        Optional<String> refused = authenticate(exchange.getRequestHeaders(), body.get());
        if (refused.isPresent()) {
            log.warn("hook request to {} from {} refused: {}", path, exchange.getRemoteAddress(), refused.get());
            exchange.getResponseHeaders().set("WWW-Authenticate", "Tidemark-HMAC-SHA256 realm=\"tidemark\"");
            send(exchange, 401, HookJson.error("unauthorized", refused.get()));
            return;
        }
        if (post) {
            command(
                    exchange,
                    body.get(),
                    HookJson::parsePostDeploy,
                    report -> {
                        List<PostDeployHandler.MarkedPoint> marked =
                                postDeploy.orElseThrow().apply(report);
                        log.info(
                                "post-deploy hook {} {}: {} restore point mark(s) set",
                                report.describe(),
                                report.outcome().wireName(),
                                marked.size());
                        return HookJson.postDeployResult(report, marked);
                    },
                    "no-pre-deploy-points");
            return;
        }
        if (back) {
            command(
                    exchange,
                    body.get(),
                    HookJson::parseRollback,
                    request -> HookJson.rollbackResult(
                            request, rollback.orElseThrow().apply(request)),
                    "rollback-failed");
            return;
        }
        if (backup) {
            backup(exchange, body.get());
            return;
        }
        HookJson.Request request;
        try {
            request = HookJson.parseRequest(body.get());
        } catch (InvalidHookException e) {
            send(exchange, 400, HookJson.error("bad-request", e.getMessage()));
            return;
        }
        try (Submission submission = service.submit(request.hook())) {
            HookResult result = service.await(submission, request.level(), request.timeout());
            send(exchange, status(result), HookJson.result(request.hook(), result));
        } catch (UnknownAppException e) {
            send(exchange, 404, HookJson.error("unknown-app", e.getMessage()));
        } catch (RetriableException e) {
            send(exchange, 503, HookJson.error("unavailable", e.getMessage() + "; retry later"));
        } catch (PermanentException e) {
            send(exchange, 422, HookJson.error("nothing-to-snapshot", e.getMessage()));
        }
    }

    /** Serves {@link #BACKUP_PATH}: publishes the manual job and answers when the wait ends. */
    private void backup(HttpExchange exchange, byte[] body) throws IOException {
        BackupRequest request;
        try {
            request = HookJson.parseBackup(body);
        } catch (InvalidHookException e) {
            send(exchange, 400, HookJson.error("bad-request", e.getMessage()));
            return;
        }
        try (Submission submission = service.backup(request)) {
            HookResult result = service.await(submission, request.level(), request.timeout());
            send(exchange, status(result), HookJson.backupResult(request, result));
        } catch (UnknownVmException e) {
            send(exchange, 404, HookJson.error("unknown-vm", e.getMessage()));
        } catch (PolicyMismatchException e) {
            send(exchange, 422, HookJson.error("policy-mismatch", e.getMessage()));
        } catch (RetriableException e) {
            send(exchange, 503, HookJson.error("unavailable", e.getMessage() + "; retry later"));
        } catch (PermanentException e) {
            send(exchange, 422, HookJson.error("backup-refused", e.getMessage()));
        }
    }

    private static int status(HookResult result) {
        return switch (result.status()) {
            case REACHED -> 200;
            case FAILED -> 502;
            case TIMED_OUT -> 504;
        };
    }

    /**
     * Serves a command endpoint: 400 when {@code parse} refuses the body, 200 with what {@code run}
     * answers, 503 on a {@link RetriableException}, 404 with {@code failure} as the error code on a
     * {@link PermanentException}.
     */
    private <R> void command(
            HttpExchange exchange,
            byte[] body,
            java.util.function.Function<byte[], R> parse,
            java.util.function.Function<R, byte[]> run,
            String failure)
            throws IOException {
        R request;
        try {
            request = parse.apply(body);
        } catch (InvalidHookException e) {
            send(exchange, 400, HookJson.error("bad-request", e.getMessage()));
            return;
        }
        try {
            send(exchange, 200, run.apply(request));
        } catch (RetriableException e) {
            send(exchange, 503, HookJson.error("unavailable", e.getMessage() + "; retry later"));
        } catch (PermanentException e) {
            send(exchange, 404, HookJson.error(failure, e.getMessage()));
        }
    }

    /** Why the request is refused, or empty when it is authentic and fresh (it is then remembered). */
    private Optional<String> authenticate(Headers headers, byte[] body) {
        String timestamp = headers.getFirst(HookSignature.TIMESTAMP_HEADER);
        String signature = headers.getFirst(HookSignature.SIGNATURE_HEADER);
        if (timestamp == null) {
            return Optional.of("missing " + HookSignature.TIMESTAMP_HEADER + " header (Unix seconds)");
        }
        if (signature == null) {
            return Optional.of("missing " + HookSignature.SIGNATURE_HEADER + " header (sha256=<hex HMAC>)");
        }
        if (!UNIX_SECONDS.matcher(timestamp).matches()) {
            return Optional.of(HookSignature.TIMESTAMP_HEADER + " must be Unix seconds, e.g. the output of `date +%s`");
        }
        if (!HookSignature.verify(secret, timestamp, body, signature)) { // first: tell strangers nothing more
            return Optional.of("bad signature: send " + HookSignature.PREFIX
                    + "<hex of HMAC-SHA256(secret, timestamp + \".\" + body)> with the engine's hook secret");
        }
        long sent = Long.parseLong(timestamp);
        long now = clock.instant().getEpochSecond();
        if (Math.abs(now - sent) > MAX_CLOCK_SKEW.toSeconds()) {
            return Optional.of("the timestamp is " + Math.abs(now - sent) + " s away from the server's clock (at most "
                    + MAX_CLOCK_SKEW.toSeconds() + " s allowed); sign each request when sending it and check the"
                    + " signer's clock (NTP)");
        }
        seen.values().removeIf(t -> t < now - MAX_CLOCK_SKEW.toSeconds());
        if (seen.putIfAbsent(timestamp + "/" + signature.toLowerCase(Locale.ROOT), sent) != null) {
            return Optional.of(
                    "replayed request: this timestamp and signature were used before; sign each request" + " afresh");
        }
        return Optional.empty();
    }

    /** The body, or empty when it is larger than {@link #MAX_BODY_BYTES}. */
    private static Optional<byte[]> readBody(InputStream in) throws IOException {
        try (in) {
            byte[] body = in.readNBytes(MAX_BODY_BYTES + 1);
            return body.length > MAX_BODY_BYTES ? Optional.empty() : Optional.of(body);
        }
    }

    private static void send(HttpExchange exchange, int status, byte[] body) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        exchange.sendResponseHeaders(status, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    /** Stops listening; requests still waiting end with 503. */
    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
