package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.replicator.Reconciler;
import io.tidemark.replicator.Replicator;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The status page over HTTP on loopback: who gets in, what the others see, and that it never waits. */
class StatusPageHttpTest {

    static final String TOKEN = "0123456789abcdef0123456789abcdef";

    private final HttpClient http = HttpClient.newBuilder()
            .followRedirects(HttpClient.Redirect.NEVER)
            .connectTimeout(Duration.ofSeconds(2))
            .build();
    private final CountDownLatch release = new CountDownLatch(1);
    private MetricsServer server;
    private Reconciler reconciler;
    private DrillResults.Background drills;

    @AfterEach
    void close() {
        release.countDown();
        if (server != null) {
            server.close();
        }
        if (reconciler != null) {
            reconciler.close();
        }
        if (drills != null) {
            drills.close();
        }
    }

    /** An engine's page: VM web-1 on host hv-secret, target vault in the state {@code targets} gives. */
    private String start(java.util.function.Supplier<Map<String, Reconciler.TargetState>> targets) {
        InMemoryInventory inventory = new InMemoryInventory();
        inventory.put("web-1", "hv-secret", Map.of());
        RpoTracker rpo = new RpoTracker(
                PolicySet.of(Policy.of(
                        "app",
                        VmSelector.ofNames("web-1"),
                        Schedule.Interval.every(Duration.ofMinutes(5)),
                        Duration.ofMinutes(30),
                        List.of("vault"))),
                inventory,
                Clock.systemUTC());
        rpo.refreshInventory();
        server = new MetricsServer(new InetSocketAddress("127.0.0.1", 0), rpo);
        StatusPage page = new StatusPage(new StatusPage.Sources(
                "hv-secret",
                rpo::status,
                targets,
                drills == null ? List::of : drills,
                List::of,
                List::of,
                new RecentJobs(),
                Clock.systemUTC()));
        server.serve(new StatusPageHttp(StatusToken.of(TOKEN, "test"), page::view));
        return "http://127.0.0.1:" + server.port();
    }

    private HttpResponse<String> get(String url, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(3));
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String url, String form) throws Exception {
        return http.send(
                HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(3))
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .POST(HttpRequest.BodyPublishers.ofString(form))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void withoutTheTokenThePageAndItsJsonAre401AndNameNothing() throws Exception {
        String base = start(Map::of);
        for (HttpResponse<String> r : List.of(
                get(base + "/status"),
                get(base + "/status", "Authorization", "Bearer wrong-token-wrong-token"),
                get(base + "/status", "Cookie", StatusPageHttp.COOKIE + "=forged"),
                get(base + "/status?token=wrong-token-wrong-token"),
                post(base + "/status/login", "token=wrong-token-wrong-token"),
                get(base + "/status.json"),
                get(base + "/status.json", "Authorization", "Bearer " + TOKEN + "x"))) {
            assertThat(r.statusCode()).as(r.uri().toString()).isEqualTo(401);
            assertThat(r.headers().firstValue("WWW-Authenticate"))
                    .hasValueSatisfying(v -> assertThat(v).startsWith("Bearer"));
            assertThat(r.headers().firstValue("Set-Cookie")).isEmpty();
            assertThat(r.body())
                    .doesNotContain("web-1")
                    .doesNotContain("hv-secret")
                    .doesNotContain("vault");
        }
        assertThat(get(base + "/status.json").body()).isEqualTo("{\"error\":\"unauthorized\"}");
        assertThat(get(base + "/status").body()).contains("<form method=\"post\" action=\"/status/login\"");
    }

    @Test
    void theTokenAsBearerAsQueryOrThroughTheLoginFormOpensThePage() throws Exception {
        String base = start(Map::of);

        HttpResponse<String> bearer = get(base + "/status", "Authorization", "Bearer " + TOKEN);
        assertThat(bearer.statusCode()).isEqualTo(200);
        assertThat(bearer.body()).contains("web-1").contains("hv-secret");
        assertThat(bearer.headers().firstValue("Content-Security-Policy"))
                .hasValueSatisfying(v -> assertThat(v).contains("default-src 'none'"));
        assertThat(get(base + "/status.json", "Authorization", "Bearer " + TOKEN)
                        .body())
                .contains("\"name\":\"web-1\"");

        // ?token= leaves the address bar at once: a redirect to /status with the login cookie
        HttpResponse<String> query = get(base + "/status?token=" + TOKEN);
        assertThat(query.statusCode()).isEqualTo(303);
        assertThat(query.headers().firstValue("Location")).contains("/status");
        String cookie = query.headers().firstValue("Set-Cookie").orElseThrow();
        assertThat(cookie).contains("HttpOnly").contains("SameSite=Strict").doesNotContain(TOKEN);
        String pair = cookie.substring(0, cookie.indexOf(';'));
        assertThat(get(base + "/status", "Cookie", pair).body()).contains("web-1");
        assertThat(get(base + "/status.json", "Cookie", "other=1; " + pair).statusCode())
                .isEqualTo(200);

        HttpResponse<String> login = post(base + "/status/login", "token=" + TOKEN);
        assertThat(login.statusCode()).isEqualTo(303);
        assertThat(login.headers().firstValue("Set-Cookie")).contains(cookie);
    }

    @Test
    void aTokenShorterThan16BytesIsRefusedAtStart() {
        assertThatThrownBy(() -> StatusToken.of("  tiny-secret  ", "file /etc/tidemark/status.token"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("/etc/tidemark/status.token")
                .hasMessageContaining("openssl rand")
                .hasMessageNotContaining("tiny-secret");
        assertThat(StatusToken.of(TOKEN, "x").toString()).doesNotContain(TOKEN);
        assertThat(StatusToken.of(TOKEN + "\n", "x").matches(" " + TOKEN)).isTrue();
    }

    @Test
    void thePageAnswersAtOnceWhileATargetHangs() throws Exception {
        // every call into the target blocks until the test ends: probes, reconciliation, drill reads
        ObjectTarget hanging = (ObjectTarget) java.lang.reflect.Proxy.newProxyInstance(
                ObjectTarget.class.getClassLoader(), new Class<?>[] {ObjectTarget.class}, (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "describe", "toString" -> {
                            return "hanging target";
                        }
                        case "close" -> {
                            return null;
                        }
                        case "hashCode" -> {
                            return System.identityHashCode(proxy);
                        }
                        case "equals" -> {
                            return proxy == args[0];
                        }
                        default -> {
                            release.await();
                            throw new io.tidemark.core.RetriableException("released");
                        }
                    }
                });
        InMemoryObjectTarget primaryTarget = new InMemoryObjectTarget();
        Repository primary = Repository.openOrInit(primaryTarget, RepositoryConfig.defaults());
        Replicator replicator = new Replicator(primary, Map.of("vault", hanging), 8);
        reconciler = new Reconciler(
                replicator,
                PolicySet.of(),
                Clock.systemUTC(),
                new Reconciler.Settings(Duration.ofMillis(50), Duration.ofMillis(50), Duration.ofMillis(200)));
        reconciler.start();
        drills = DrillResults.inBackground(
                primaryTarget, Map.of("vault", hanging), Duration.ofMillis(50), Duration.ofMillis(200));
        String base = start(reconciler::states);

        for (int i = 0; i < 5; i++) {
            long t0 = System.nanoTime();
            HttpResponse<String> r = get(base + "/status", "Authorization", "Bearer " + TOKEN);
            assertThat(r.statusCode()).isEqualTo(200);
            // the target never answers: any bound tells waiting from not waiting; this one allows a loaded host
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(3));
            assertThat(r.body()).contains("vault").contains("down");
        }
    }
}
