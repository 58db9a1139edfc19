package io.tidemark.scheduler.hook;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.format.Json;
import java.io.IOException;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The JSON bodies of {@code POST /hooks/pre-deploy}, shared by the server and the command-line
 * client.
 *
 * <p>Request: {@code {"app":"shop","commit":"4f2a…","pipeline":"build-118","wait":"committed",
 * "timeoutSeconds":600}}; {@code app}, {@code commit} and {@code pipeline} are required strings,
 * {@code wait} is one of {@code captured} (default), {@code committed}, {@code replicated}, and
 * {@code timeoutSeconds} a whole number from 1 to 3600 (default 600). Unknown fields are refused.
 *
 * <p>Result (200, 502, 504): {@code status} ({@code reached}, {@code failed}, {@code timed-out}),
 * {@code wait}, {@code app}, {@code commit}, {@code pipeline}, {@code submittedAt}, {@code elapsedMs},
 * {@code message}, {@code vms} (per VM: {@code vm}, {@code host}, {@code jobId}, {@code policy},
 * {@code targets}, {@code reached}, and once known {@code capturedAt}, {@code restorePointId}, {@code
 * capturedAfterMs}, {@code committedAfterMs}, {@code replicatedAfterMs}, {@code replicatedTo}), and
 * on failure {@code failure} ({@code vm}, {@code host}, {@code jobId}, {@code stage}, {@code error},
 * {@code retriable}). Error (other statuses): {@code {"error":"<code>","message":"…"}}.
 *
 * <p>The bodies of {@code POST /hooks/backup} ({@link #parseBackup}, {@link #backupResult}), of the
 * post-deploy and of the rollback endpoint live here too.
 */
public final class HookJson {

    /** How long a request waits when it does not say. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(10);

    /** The longest wait a request may ask for. */
    public static final Duration MAX_TIMEOUT = Duration.ofHours(1);

    private static final List<String> FIELDS =
            List.of("app", "commit", "pipeline", "wait", "timeoutSeconds", "requestId");
    private static final List<String> POST_DEPLOY_FIELDS = List.of("app", "commit", "pipeline", "outcome", "requestId");
    private static final List<String> ROLLBACK_FIELDS = List.of("app", "commit", "vms", "requestId");
    private static final List<String> BACKUP_FIELDS =
            List.of("vm", "policy", "requestId", "wait", "timeoutSeconds", "nonce");

    private HookJson() {}

    /**
     * A parsed request: the hook, with its wait level always present, and how long to wait.
     *
     * @param hook the hook
     * @param timeout how long to wait, from the submission
     */
    public record Request(PreDeployHook hook, Duration timeout) {
        public Request {
            Objects.requireNonNull(hook, "hook");
            Objects.requireNonNull(timeout, "timeout");
            if (hook.waitLevel().isEmpty()) {
                throw new IllegalArgumentException("a request waits for a level");
            }
        }

        /** The level to wait for. */
        public WaitLevel level() {
            return hook.waitLevel().orElseThrow();
        }
    }

    /**
     * Parses a request body.
     *
     * @throws InvalidHookException naming the field at fault, or the body when it is not a JSON object
     */
    public static Request parseRequest(byte[] body) {
        JsonNode root = object(
                body,
                FIELDS,
                "the body must be a JSON object with app, commit and pipeline (and optionally wait, timeoutSeconds)");
        String app = text(root, "app");
        String commit = text(root, "commit");
        String pipeline = text(root, "pipeline");
        WaitLevel wait = waitLevel(root);
        return new Request(new PreDeployHook(app, commit, pipeline, Optional.of(wait)), timeout(root));
    }

    private static WaitLevel waitLevel(JsonNode root) {
        if (!root.has("wait")) {
            return WaitLevel.CAPTURED;
        }
        String w = text(root, "wait");
        return WaitLevel.parse(w)
                .orElseThrow(() -> new InvalidHookException(
                        "wait", "'wait' must be one of " + WaitLevel.wireNames() + ", got '" + w + "'"));
    }

    private static Duration timeout(JsonNode root) {
        if (!root.has("timeoutSeconds")) {
            return DEFAULT_TIMEOUT;
        }
        JsonNode t = root.get("timeoutSeconds");
        if (!t.canConvertToExactIntegral() || t.asLong() < 1 || t.asLong() > MAX_TIMEOUT.toSeconds()) {
            throw new InvalidHookException(
                    "timeoutSeconds",
                    "'timeoutSeconds' must be a whole number from 1 to " + MAX_TIMEOUT.toSeconds() + ", got " + t);
        }
        return Duration.ofSeconds(t.asLong());
    }

    /**
     * Parses a backup request body: {@code vm} and {@code requestId} (required strings), and
     * optionally {@code policy}, {@code wait} (as for pre-deploy, default {@code captured}), {@code
     * timeoutSeconds} and {@code nonce} (ignored: it makes two sends of one request sign different
     * bytes, so the second is not refused as a replay).
     *
     * @throws InvalidHookException naming the field at fault, or the body when it is not a JSON object
     */
    public static BackupRequest parseBackup(byte[] body) {
        JsonNode root = object(
                body,
                BACKUP_FIELDS,
                "the body must be a JSON object with vm and requestId (and optionally policy, wait,"
                        + " timeoutSeconds)");
        Optional<String> policy = root.has("policy") ? Optional.of(text(root, "policy")) : Optional.empty();
        return new BackupRequest(text(root, "vm"), policy, text(root, "requestId"), waitLevel(root), timeout(root));
    }

    /** The body of a backup request. */
    public static byte[] backupRequest(BackupRequest request) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("vm", request.vm());
        request.policy().ifPresent(p -> o.put("policy", p));
        o.put("requestId", request.requestId());
        o.put("wait", request.level().wireName());
        o.put("timeoutSeconds", request.timeout().toSeconds());
        o.put("nonce", java.util.UUID.randomUUID().toString());
        return bytes(o);
    }

    /**
     * The body of a backup answer (200, 502, 504): {@code status}, {@code wait}, {@code vm}, {@code
     * requestId}, {@code submittedAt}, {@code elapsedMs}, {@code message}, {@code vms} and {@code
     * failure} as in a pre-deploy result.
     */
    public static byte[] backupResult(BackupRequest request, HookResult r) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("status", r.status().wireName());
        o.put("wait", r.level().wireName());
        o.put("vm", request.vm());
        o.put("requestId", request.requestId());
        o.put("submittedAt", r.submittedAt().toString());
        o.put("elapsedMs", r.elapsed().toMillis());
        o.put("message", backupSummary(request, r));
        outcome(o, r);
        return bytes(o);
    }

    private static String backupSummary(BackupRequest request, HookResult r) {
        HookResult.VmResult vm = r.vms().get(0);
        String again = "tidemark backup --vm " + request.vm() + " --request-id " + request.requestId();
        return switch (r.status()) {
            case REACHED ->
                "VM " + vm.vm() + " " + r.level().wireName()
                        + vm.restorePointId()
                                .map(id -> " as restore point " + id)
                                .orElse("") + " in "
                        + String.format(
                                java.util.Locale.ROOT, "%.1f s", r.elapsed().toMillis() / 1000.0) + " (job "
                        + vm.jobId() + ", policy " + vm.policy() + ")";
            case FAILED -> {
                HookResult.Failure f = r.failure().orElseThrow();
                yield "backup of VM " + f.vm() + " failed at " + f.stage() + ": " + f.error() + " (job " + f.jobId()
                        + "); check the worker log on host " + f.host() + " and `tidemark jobs --vm " + f.vm()
                        + " --failed`; a new request id (or none) asks for a new attempt";
            }
            case TIMED_OUT ->
                "timed out after "
                        + String.format(
                                java.util.Locale.ROOT, "%.1f s", r.elapsed().toMillis() / 1000.0)
                        + " waiting for VM " + vm.vm() + " to be " + r.level().wireName() + "; the job " + vm.jobId()
                        + " goes on: wait for it again with `" + again + "`, and check that the worker of host "
                        + vm.host() + " runs (`tidemark status`)";
        };
    }

    /**
     * Parses a post-deploy request body: {@code app}, {@code commit}, {@code outcome} ({@code
     * success} or {@code failure}) and optionally {@code pipeline} and {@code requestId}.
     *
     * @throws InvalidHookException naming the field at fault, or the body when it is not a JSON object
     */
    public static PostDeployReport parsePostDeploy(byte[] body) {
        JsonNode root = object(
                body,
                POST_DEPLOY_FIELDS,
                "the body must be a JSON object with app, commit and outcome (and optionally pipeline)");
        String app = text(root, "app");
        String commit = text(root, "commit");
        Optional<String> pipeline = root.has("pipeline") ? Optional.of(text(root, "pipeline")) : Optional.empty();
        String outcome = text(root, "outcome");
        PostDeployReport.Outcome parsed = PostDeployReport.Outcome.parse(outcome)
                .orElseThrow(() -> new InvalidHookException(
                        "outcome", "'outcome' must be success or failure, got '" + outcome + "'"));
        return new PostDeployReport(app, commit, pipeline, parsed);
    }

    /** The body of a post-deploy request for {@code report}. */
    public static byte[] postDeployRequest(PostDeployReport report) {
        ObjectNode o = fields(report);
        o.put("requestId", java.util.UUID.randomUUID().toString());
        return bytes(o);
    }

    /** The body of a post-deploy answer: what was marked where. */
    public static byte[] postDeployResult(PostDeployReport report, List<PostDeployHandler.MarkedPoint> marked) {
        ObjectNode o = fields(report);
        long vms = marked.stream()
                .map(PostDeployHandler.MarkedPoint::vm)
                .distinct()
                .count();
        o.put(
                "message",
                (report.outcome() == PostDeployReport.Outcome.FAILURE ? "pinned " : "expired ") + marked.size()
                        + " restore point(s) of " + vms + " VM(s) of the deploy of " + report.describe());
        ArrayNode points = o.putArray("points");
        for (PostDeployHandler.MarkedPoint m : marked) {
            ObjectNode n = points.addObject();
            n.put("location", m.location());
            n.put("vm", m.vm());
            n.put("restorePointId", m.restorePointId());
            n.put("mark", m.mark());
        }
        return bytes(o);
    }

    /** The fields that name a post-deploy report, shared by its request and its answer. */
    private static ObjectNode fields(PostDeployReport report) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("app", report.app());
        o.put("commit", report.commit());
        report.pipeline().ifPresent(p -> o.put("pipeline", p));
        o.put("outcome", report.outcome().wireName());
        return o;
    }

    /**
     * Parses a rollback request body: {@code app}, {@code commit} and optionally {@code vms} (a
     * list of VM names).
     *
     * @throws InvalidHookException naming the field at fault, or the body when it is not a JSON object
     */
    public static RollbackRequest parseRollback(byte[] body) {
        JsonNode root = object(
                body, ROLLBACK_FIELDS, "the body must be a JSON object with app and commit (and optionally vms)");
        List<String> vms = new java.util.ArrayList<>();
        if (root.has("vms")) {
            JsonNode list = root.get("vms");
            if (!list.isArray()) {
                throw new InvalidHookException("vms", "'vms' must be a list of VM names");
            }
            for (JsonNode vm : list) {
                if (!vm.isTextual()) {
                    throw new InvalidHookException("vms", "'vms' must be a list of VM names, got " + vm);
                }
                vms.add(vm.asText());
            }
        }
        return new RollbackRequest(text(root, "app"), text(root, "commit"), vms);
    }

    /** The body of a rollback request. */
    public static byte[] rollbackRequest(RollbackRequest request) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("app", request.app());
        o.put("commit", request.commit());
        ArrayNode vms = o.putArray("vms");
        request.vms().forEach(vms::add);
        o.put("requestId", java.util.UUID.randomUUID().toString());
        return bytes(o);
    }

    /** The body of a rollback answer: each VM, the point it returned to and its new images. */
    public static byte[] rollbackResult(RollbackRequest request, List<RollbackHandler.RolledBack> done) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("app", request.app());
        o.put("commit", request.commit());
        o.put(
                "message",
                "returned " + done.size() + " VM(s) of " + request.app() + " to their pre-deploy points of "
                        + request.commit());
        ArrayNode vms = o.putArray("vms");
        for (RollbackHandler.RolledBack r : done) {
            ObjectNode n = vms.addObject();
            n.put("vm", r.vm());
            n.put("restorePointId", r.restorePointId());
            n.put("capturedAt", r.capturedAt().toString());
            n.put("elapsedMs", r.elapsed().toMillis());
            ObjectNode images = n.putObject("images");
            new java.util.TreeMap<>(r.images()).forEach(images::put);
        }
        return bytes(o);
    }

    /** {@code body} as a JSON object holding only {@code fields}, with a sane {@code requestId}. */
    private static JsonNode object(byte[] body, List<String> fields, String expected) {
        JsonNode root;
        try {
            root = Json.mapper()
                    .reader()
                    .with(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                    .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                    .readTree(body);
        } catch (IOException e) {
            throw new InvalidHookException("", "the body is not valid JSON: " + firstLine(e));
        }
        if (root == null || !root.isObject()) {
            throw new InvalidHookException("", expected);
        }
        for (Iterator<String> names = root.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!fields.contains(name)) {
                throw new InvalidHookException(
                        name, "unknown field '" + name + "'; expected " + String.join(", ", fields));
            }
        }
        if (root.has("requestId")
                && (!root.get("requestId").isTextual()
                        || root.get("requestId").asText().length() > 100)) {
            throw new InvalidHookException("requestId", "'requestId' must be a string of at most 100 characters");
        }
        return root;
    }

    /** The body of a request for {@code hook} waiting for {@code wait} up to {@code timeout}. */
    public static byte[] request(PreDeployHook hook, WaitLevel wait, Duration timeout) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("app", hook.app());
        o.put("commit", hook.commit());
        o.put("pipeline", hook.pipeline());
        o.put("wait", wait.wireName());
        o.put("timeoutSeconds", timeout.toSeconds());
        // unique per attempt: two attempts within one second would otherwise sign identical bytes
        // and the second would be refused as a replay
        o.put("requestId", java.util.UUID.randomUUID().toString());
        return bytes(o);
    }

    /** The body of a result. */
    public static byte[] result(PreDeployHook hook, HookResult r) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("status", r.status().wireName());
        o.put("wait", r.level().wireName());
        o.put("app", hook.app());
        o.put("commit", hook.commit());
        o.put("pipeline", hook.pipeline());
        o.put("submittedAt", r.submittedAt().toString());
        o.put("elapsedMs", r.elapsed().toMillis());
        o.put("message", r.summary());
        outcome(o, r);
        return bytes(o);
    }

    /** The {@code vms} and {@code failure} fields of a result. */
    private static void outcome(ObjectNode o, HookResult r) {
        ArrayNode vms = o.putArray("vms");
        for (HookResult.VmResult v : r.vms()) {
            ObjectNode n = vms.addObject();
            n.put("vm", v.vm());
            n.put("host", v.host());
            n.put("jobId", v.jobId());
            n.put("policy", v.policy());
            ArrayNode targets = n.putArray("targets");
            v.targets().forEach(targets::add);
            n.put("reached", v.reached());
            v.capturedAt().ifPresent(t -> n.put("capturedAt", t.toString()));
            v.restorePointId().ifPresent(id -> n.put("restorePointId", id));
            v.capturedAfter().ifPresent(d -> n.put("capturedAfterMs", d.toMillis()));
            v.committedAfter().ifPresent(d -> n.put("committedAfterMs", d.toMillis()));
            v.replicatedAfter().ifPresent(d -> n.put("replicatedAfterMs", d.toMillis()));
            ArrayNode to = n.putArray("replicatedTo");
            v.replicatedTo().forEach(to::add);
        }
        r.failure().ifPresent(f -> {
            ObjectNode n = o.putObject("failure");
            n.put("vm", f.vm());
            n.put("host", f.host());
            n.put("jobId", f.jobId());
            n.put("stage", f.stage());
            n.put("error", f.error());
            n.put("retriable", f.retriable());
        });
    }

    /** The body of an error response. */
    public static byte[] error(String code, String message) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("error", code);
        o.put("message", message);
        return bytes(o);
    }

    private static String text(JsonNode root, String field) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) {
            throw new InvalidHookException(field, "missing field '" + field + "'");
        }
        if (!n.isTextual()) {
            throw new InvalidHookException(field, "'" + field + "' must be a string, got " + n.getNodeType());
        }
        return n.asText();
    }

    private static String firstLine(IOException e) {
        String m = e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
    }

    private static byte[] bytes(ObjectNode o) {
        try {
            return Json.mapper().writeValueAsBytes(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write a JSON tree", e);
        }
    }
}
