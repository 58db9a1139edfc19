package io.tidemark.scheduler.hook;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.bus.Topics;
import io.tidemark.format.Json;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.VmSelector;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.hook.FakeDownstream.Outcome;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The endpoint over real HTTP on 127.0.0.1; the recording bus and a fake downstream play the rest. */
class HookServerTest {

    static final Instant T0 = Instant.parse("2026-11-24T10:00:00Z");
    static final HookSecret SECRET = HookSecret.of("0123456789abcdef0123456789abcdef", "test");
    static final String SHOP = "{\"app\":\"shop\",\"commit\":\"4f2a9c1\",\"pipeline\":\"build-118\"";

    private final FakeClock clock = new FakeClock(T0);
    private final RecordingEventBus bus = new RecordingEventBus();
    private final InMemoryInventory inventory = new InMemoryInventory()
            .put("shop-1", "hv1", Map.of("app", "shop"))
            .put("shop-2", "hv2", Map.of("app", "shop"));
    private final FakeDownstream downstream = new FakeDownstream(bus, clock, List.of("hv1", "hv2"));
    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private HookService service;
    private HookServer server;
    /** The reports the post-deploy endpoint handed on; it knows points of shop 4f2a9c1 only. */
    private final List<PostDeployReport> reports = new java.util.concurrent.CopyOnWriteArrayList<>();

    private final PostDeployHandler postDeploy = report -> {
        reports.add(report);
        if (!report.commit().equals("4f2a9c1")) {
            throw new io.tidemark.core.PermanentException("no pre-deploy restore point of " + report.describe());
        }
        String mark = report.outcome() == PostDeployReport.Outcome.FAILURE ? "pinned" : "expired";
        return List.of(
                new PostDeployHandler.MarkedPoint("local", "shop-1", "rp-1", mark),
                new PostDeployHandler.MarkedPoint("offsite", "shop-1", "rp-1", mark));
    };

    @BeforeEach
    void start() {
        service = new HookService(
                PolicySet.of(
                        HookServiceTest.policy("shop", HookServiceTest.label("shop"), List.of("offsite"), "shop"),
                        HookServiceTest.policy("ghost", VmSelector.ofNames("gone"), List.of(), "ghost")),
                inventory,
                bus,
                clock);
        server = HookServer.start(
                new InetSocketAddress("127.0.0.1", 0),
                service,
                Optional.of(postDeploy),
                Optional.empty(),
                SECRET,
                clock);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private HttpResponse<String> post(String body) throws IOException, InterruptedException {
        String ts = String.valueOf(clock.instant().getEpochSecond());
        return post(body, signed(ts, body));
    }

    private static Map<String, String> signed(String ts, String body) {
        Map<String, String> h = new LinkedHashMap<>();
        h.put(HookSignature.TIMESTAMP_HEADER, ts);
        h.put(HookSignature.SIGNATURE_HEADER, HookSignature.sign(SECRET, ts, body.getBytes(UTF_8)));
        return h;
    }

    private HttpResponse<String> post(String body, Map<String, String> headers)
            throws IOException, InterruptedException {
        return send(HookServer.PATH, "POST", body, headers);
    }

    private HttpResponse<String> send(String path, String method, String body, Map<String, String> headers)
            throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
                .timeout(Duration.ofSeconds(20))
                .method(method, HttpRequest.BodyPublishers.ofString(body));
        headers.forEach(b::header);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static JsonNode json(HttpResponse<String> r) throws IOException {
        assertThat(r.headers().firstValue("Content-Type")).contains("application/json; charset=utf-8");
        return Json.mapper().readTree(r.body());
    }

    private List<RecordingEventBus.Published> jobs() {
        return bus.published().stream()
                .filter(p -> p.topic().startsWith(Topics.JOBS_PREFIX))
                .toList();
    }

    @Test
    void answers200WithEveryVmsRestorePointOnceTheLevelIsReached() throws Exception {
        HttpResponse<String> r = post(SHOP + ",\"wait\":\"committed\",\"timeoutSeconds\":60}");

        assertThat(r.statusCode()).isEqualTo(200);
        JsonNode body = json(r);
        assertThat(body.path("status").asText()).isEqualTo("reached");
        assertThat(body.path("wait").asText()).isEqualTo("committed");
        assertThat(body.path("app").asText()).isEqualTo("shop");
        assertThat(body.path("submittedAt").asText()).isEqualTo(T0.toString());
        assertThat(body.path("message").asText()).contains("2 VMs committed");
        JsonNode vm = body.path("vms").get(0);
        assertThat(vm.path("vm").asText()).isEqualTo("shop-1");
        assertThat(vm.path("host").asText()).isEqualTo("hv1");
        assertThat(vm.path("jobId").asText()).isEqualTo("hook/shop/4f2a9c1/build-118/shop-1");
        assertThat(vm.path("restorePointId").asText()).isEqualTo("rp-shop-1");
        assertThat(vm.path("capturedAt").asText()).isEqualTo(T0.toString());
        assertThat(vm.path("capturedAfterMs").asLong()).isEqualTo(1000);
        assertThat(vm.path("committedAfterMs").asLong()).isEqualTo(2000);
        assertThat(vm.path("reached").asBoolean()).isTrue();
        assertThat(body.path("vms")).hasSize(2);
        assertThat(jobs()).hasSize(2);
    }

    @Test
    void waitsForCapturedByDefault() throws Exception {
        downstream.otherwise(Outcome.CAPTURED);

        HttpResponse<String> r = post(SHOP + "}");

        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(json(r).path("wait").asText()).isEqualTo("captured");
        assertThat(json(r).path("vms").get(0).has("restorePointId")).isFalse();
    }

    @Test
    void aFailedJobAnswers502WithTheFailure() throws Exception {
        downstream.on("shop-2", Outcome.FAILED);

        HttpResponse<String> r = post(SHOP + ",\"wait\":\"replicated\"}");

        assertThat(r.statusCode()).isEqualTo(502);
        JsonNode body = json(r);
        assertThat(body.path("status").asText()).isEqualTo("failed");
        assertThat(body.path("failure").path("vm").asText()).isEqualTo("shop-2");
        assertThat(body.path("failure").path("error").asText()).isEqualTo("QMP socket refused");
        assertThat(body.path("failure").path("retriable").asBoolean()).isFalse();
        assertThat(body.path("message").asText()).contains("do not deploy");
    }

    @Test
    void aTimeoutAnswers504SayingWhichVmsLag() throws Exception {
        downstream.on("shop-1", Outcome.CAPTURED).on("shop-2", Outcome.STALLED);

        HttpResponse<String> r = post(SHOP + ",\"timeoutSeconds\":30}");

        assertThat(r.statusCode()).isEqualTo(504);
        JsonNode body = json(r);
        assertThat(body.path("status").asText()).isEqualTo("timed-out");
        assertThat(body.path("message").asText()).contains("waiting for shop-2 to be captured");
        assertThat(body.path("vms").get(0).path("reached").asBoolean()).isTrue();
        assertThat(body.path("vms").get(1).path("reached").asBoolean()).isFalse();
    }

    @Test
    void missingHeadersAre401AndPublishNothing() throws Exception {
        String body = SHOP + "}";
        Map<String, String> noTimestamp = signed("1", body);
        noTimestamp.remove(HookSignature.TIMESTAMP_HEADER);
        Map<String, String> noSignature = signed(String.valueOf(T0.getEpochSecond()), body);
        noSignature.remove(HookSignature.SIGNATURE_HEADER);

        HttpResponse<String> r1 = post(body, Map.of());
        HttpResponse<String> r2 = post(body, noTimestamp);
        HttpResponse<String> r3 = post(body, noSignature);

        assertThat(List.of(r1.statusCode(), r2.statusCode(), r3.statusCode())).containsOnly(401);
        assertThat(json(r1).path("error").asText()).isEqualTo("unauthorized");
        assertThat(json(r2).path("message").asText()).startsWith("missing X-Tidemark-Timestamp header");
        assertThat(json(r3).path("message").asText()).startsWith("missing X-Tidemark-Signature header");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aBadSignatureIs401AndPublishesNothing() throws Exception {
        String body = SHOP + "}";
        String ts = String.valueOf(T0.getEpochSecond());
        HookSecret other = HookSecret.of("not-the-engines-secret-at-all", "test");
        String tampered = SHOP.replace("shop", "shop") + ",\"wait\":\"captured\"}";

        HttpResponse<String> wrongKey = post(
                body,
                Map.of(
                        HookSignature.TIMESTAMP_HEADER,
                        ts,
                        HookSignature.SIGNATURE_HEADER,
                        HookSignature.sign(other, ts, body.getBytes(UTF_8))));
        HttpResponse<String> otherBody = post(tampered, signed(ts, body));
        HttpResponse<String> otherTime = post(
                body,
                Map.of(
                        HookSignature.TIMESTAMP_HEADER,
                        String.valueOf(T0.getEpochSecond() + 1),
                        HookSignature.SIGNATURE_HEADER,
                        signed(ts, body).get(HookSignature.SIGNATURE_HEADER)));
        HttpResponse<String> garbage =
                post(body, Map.of(HookSignature.TIMESTAMP_HEADER, ts, HookSignature.SIGNATURE_HEADER, "sha256=abc"));
        HttpResponse<String> notSeconds = post(body, signed("2026-11-24T10:00:00Z", body));

        for (HttpResponse<String> r : List.of(wrongKey, otherBody, otherTime, garbage, notSeconds)) {
            assertThat(r.statusCode()).isEqualTo(401);
        }
        assertThat(json(wrongKey).path("message").asText()).startsWith("bad signature");
        assertThat(json(notSeconds).path("message").asText()).contains("must be Unix seconds");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aTimestampMoreThanFiveMinutesOffIs401AndPublishesNothing() throws Exception {
        String body = SHOP + "}";
        HttpResponse<String> old = post(body, signed(String.valueOf(T0.getEpochSecond() - 301), body));
        HttpResponse<String> future = post(body, signed(String.valueOf(T0.getEpochSecond() + 301), body));

        assertThat(old.statusCode()).isEqualTo(401);
        assertThat(future.statusCode()).isEqualTo(401);
        assertThat(json(old).path("message").asText())
                .startsWith("the timestamp is 301 s away from the server's clock (at most 300 s allowed)");
        assertThat(bus.published()).isEmpty();

        assertThat(post(body, signed(String.valueOf(T0.getEpochSecond() - 300), body))
                        .statusCode())
                .isEqualTo(200);
    }

    @Test
    void aReplayedRequestIs401AndPublishesNothingMore() throws Exception {
        String body = SHOP + "}";
        Map<String, String> headers = signed(String.valueOf(T0.getEpochSecond()), body);

        assertThat(post(body, headers).statusCode()).isEqualTo(200);
        int published = bus.published().size();
        HttpResponse<String> replay = post(body, headers);

        assertThat(replay.statusCode()).isEqualTo(401);
        assertThat(json(replay).path("message").asText()).startsWith("replayed request");
        assertThat(bus.published()).hasSize(published);

        // the same hook signed afresh is welcome: it reuses the jobs
        clock.advance(Duration.ofSeconds(1));
        assertThat(post(body).statusCode()).isEqualTo(200);
        assertThat(jobs())
                .extracting(p -> p.event().jobId())
                .containsExactly(
                        "hook/shop/4f2a9c1/build-118/shop-1",
                        "hook/shop/4f2a9c1/build-118/shop-2",
                        "hook/shop/4f2a9c1/build-118/shop-1",
                        "hook/shop/4f2a9c1/build-118/shop-2");
    }

    @Test
    void anUnknownAppIs404NamingTheKnownApps() throws Exception {
        HttpResponse<String> r = post("{\"app\":\"web\",\"commit\":\"c\",\"pipeline\":\"p\"}");

        assertThat(r.statusCode()).isEqualTo(404);
        assertThat(json(r).path("error").asText()).isEqualTo("unknown-app");
        assertThat(json(r).path("message").asText()).contains("'web'").contains("known apps: ghost, shop");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void anAppWithoutKnownVmsIs422() throws Exception {
        HttpResponse<String> r = post("{\"app\":\"ghost\",\"commit\":\"c\",\"pipeline\":\"p\"}");

        assertThat(r.statusCode()).isEqualTo(422);
        assertThat(json(r).path("message").asText()).contains("select no VM");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void malformedRequestsAre400NamingTheField() throws Exception {
        HttpResponse<String> notJson = post("app=shop");
        HttpResponse<String> noCommit = post("{\"app\":\"shop\",\"pipeline\":\"p\"}");
        HttpResponse<String> badWait = post(SHOP + ",\"wait\":\"soon\"}");

        assertThat(List.of(notJson.statusCode(), noCommit.statusCode(), badWait.statusCode()))
                .containsOnly(400);
        assertThat(json(notJson).path("message").asText()).startsWith("the body is not valid JSON");
        assertThat(json(noCommit).path("message").asText()).isEqualTo("missing field 'commit'");
        assertThat(json(badWait).path("message").asText()).contains("'wait' must be one of");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void otherMethodsPathsAndHugeBodiesAreRefused() throws Exception {
        HttpResponse<String> get = send(HookServer.PATH, "GET", "", Map.of());
        HttpResponse<String> elsewhere = send("/hooks/post-mortem", "POST", "{}", Map.of());
        String huge = "x".repeat(HookServer.MAX_BODY_BYTES + 1);
        HttpResponse<String> tooLarge = post(huge);

        assertThat(get.statusCode()).isEqualTo(405);
        assertThat(get.headers().firstValue("Allow")).contains("POST");
        assertThat(elsewhere.statusCode()).isEqualTo(404);
        assertThat(tooLarge.statusCode()).isEqualTo(413);
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void anUnavailableBusIs503() throws Exception {
        HookServiceTest.CountingBus failing = new HookServiceTest.CountingBus(bus);
        failing.failJobs = true;
        HookService down = new HookService(
                PolicySet.of(HookServiceTest.policy("shop", HookServiceTest.label("shop"), List.of(), "shop")),
                inventory,
                failing,
                clock);
        try (HookServer other = HookServer.start(new InetSocketAddress("127.0.0.1", 0), down, SECRET, clock)) {
            String body = SHOP + "}";
            String ts = String.valueOf(T0.getEpochSecond());
            HttpRequest.Builder b = HttpRequest.newBuilder(
                            URI.create("http://127.0.0.1:" + other.port() + HookServer.PATH))
                    .POST(HttpRequest.BodyPublishers.ofString(body));
            signed(ts, body).forEach(b::header);
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());

            assertThat(r.statusCode()).isEqualTo(503);
            assertThat(json(r).path("message").asText()).contains("broker down").endsWith("retry later");
            assertThat(down.waiting()).isZero();
        }
    }

    @Test
    void parsesHostAndPort() {
        assertThat(HookServer.address("127.0.0.1:9465")).isEqualTo(new InetSocketAddress("127.0.0.1", 9465));
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> HookServer.address("9465"))
                .hasMessageContaining("must be HOST:PORT, e.g. 127.0.0.1:9465");
    }

    @Test
    void postDeployPinsThroughTheHandlerAndAnswersWhatWasMarked() throws Exception {
        String body = "{\"app\":\"shop\",\"commit\":\"4f2a9c1\",\"outcome\":\"failure\"}";
        String ts = String.valueOf(clock.instant().getEpochSecond());

        HttpResponse<String> r = send(HookServer.POST_DEPLOY_PATH, "POST", body, signed(ts, body));

        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(reports)
                .containsExactly(
                        new PostDeployReport("shop", "4f2a9c1", Optional.empty(), PostDeployReport.Outcome.FAILURE));
        JsonNode answer = json(r);
        assertThat(answer.path("message").asText())
                .isEqualTo("pinned 2 restore point(s) of 1 VM(s) of the deploy of shop 4f2a9c1");
        assertThat(answer.path("points").get(1).path("location").asText()).isEqualTo("offsite");
        assertThat(jobs()).isEmpty();
    }

    @Test
    void postDeployRefusesBadSignaturesBadOutcomesAndUnknownDeploysWithoutMarking() throws Exception {
        String ts = String.valueOf(clock.instant().getEpochSecond());
        String good = "{\"app\":\"shop\",\"commit\":\"4f2a9c1\",\"outcome\":\"success\"}";
        Map<String, String> forged = signed(ts, good.replace("success", "failure"));

        assertThat(send(HookServer.POST_DEPLOY_PATH, "POST", good, forged).statusCode())
                .isEqualTo(401);
        String bad = "{\"app\":\"shop\",\"commit\":\"4f2a9c1\",\"outcome\":\"meh\"}";
        HttpResponse<String> badOutcome = send(HookServer.POST_DEPLOY_PATH, "POST", bad, signed(ts, bad));
        assertThat(badOutcome.statusCode()).isEqualTo(400);
        assertThat(json(badOutcome).path("message").asText()).contains("'outcome' must be success or failure");
        assertThat(reports).isEmpty();

        String unknown = "{\"app\":\"shop\",\"commit\":\"0000000\",\"outcome\":\"success\"}";
        HttpResponse<String> none = send(HookServer.POST_DEPLOY_PATH, "POST", unknown, signed(ts, unknown));
        assertThat(none.statusCode()).isEqualTo(404);
        assertThat(json(none).path("error").asText()).isEqualTo("no-pre-deploy-points");
    }

    private HttpResponse<String> backup(String body) throws IOException, InterruptedException {
        return send(
                HookServer.BACKUP_PATH,
                "POST",
                body,
                signed(String.valueOf(clock.instant().getEpochSecond()), body));
    }

    @Test
    void aBackupAnswers200WithTheRestorePointOfItsManualJob() throws Exception {
        HttpResponse<String> r = backup("{\"vm\":\"shop-2\",\"requestId\":\"r-1\",\"wait\":\"committed\"}");

        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        JsonNode body = json(r);
        assertThat(body.path("status").asText()).isEqualTo("reached");
        assertThat(body.path("vm").asText()).isEqualTo("shop-2");
        assertThat(body.path("requestId").asText()).isEqualTo("r-1");
        assertThat(body.path("vms").get(0).path("restorePointId").asText()).isEqualTo("rp-shop-2");
        assertThat(body.path("vms").get(0).path("jobId").asText()).isEqualTo("manual/r-1/shop-2");
        assertThat(body.path("message").asText()).contains("VM shop-2 committed as restore point rp-shop-2");
        assertThat(jobs()).singleElement().satisfies(p -> assertThat(
                        ((io.tidemark.core.event.SnapshotJob) p.event().payload())
                                .trigger()
                                .kind())
                .isEqualTo(io.tidemark.core.event.TriggerKind.MANUAL));

        // the same request again (a new nonce, so not a replay): the same answer, no second job
        HttpResponse<String> again =
                backup("{\"vm\":\"shop-2\",\"requestId\":\"r-1\",\"wait\":\"committed\",\"nonce\":\"2\"}");
        assertThat(again.statusCode()).isEqualTo(200);
        assertThat(json(again).path("vms").get(0).path("restorePointId").asText())
                .isEqualTo("rp-shop-2");
        assertThat(jobs()).hasSize(1);
    }

    @Test
    void aBackupWithABadSignatureIs401AndPublishesNothing() throws Exception {
        String body = "{\"vm\":\"shop-1\",\"requestId\":\"r-1\"}";
        Map<String, String> headers = signed(String.valueOf(T0.getEpochSecond()), body);
        headers.put(
                HookSignature.SIGNATURE_HEADER,
                HookSignature.sign(
                        HookSecret.of("another-secret-0123456789", "x"),
                        String.valueOf(T0.getEpochSecond()),
                        body.getBytes(UTF_8)));

        HttpResponse<String> r = send(HookServer.BACKUP_PATH, "POST", body, headers);

        assertThat(r.statusCode()).isEqualTo(401);
        assertThat(json(r).path("message").asText()).startsWith("bad signature");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aBackupOfAnUnknownVmIs404NamingTheKnownVms() throws Exception {
        HttpResponse<String> r = backup("{\"vm\":\"web-1\",\"requestId\":\"r-1\"}");

        assertThat(r.statusCode()).isEqualTo(404);
        assertThat(json(r).path("error").asText()).isEqualTo("unknown-vm");
        assertThat(json(r).path("message").asText()).contains("it knows shop-1, shop-2");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aBackupUnderAPolicyThatDoesNotSelectTheVmIs422NamingThoseThatDo() throws Exception {
        HttpResponse<String> r = backup("{\"vm\":\"shop-1\",\"policy\":\"ghost\",\"requestId\":\"r-1\"}");

        assertThat(r.statusCode()).isEqualTo(422);
        assertThat(json(r).path("error").asText()).isEqualTo("policy-mismatch");
        assertThat(json(r).path("message").asText()).contains("the policies that do: shop");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aMalformedBackupIs400NamingTheField() throws Exception {
        HttpResponse<String> r = backup("{\"vm\":\"shop-1\"}");

        assertThat(r.statusCode()).isEqualTo(400);
        assertThat(json(r).path("message").asText()).contains("missing field 'requestId'");
        assertThat(bus.published()).isEmpty();
    }
}
