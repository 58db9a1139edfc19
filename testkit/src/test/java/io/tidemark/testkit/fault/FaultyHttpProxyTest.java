package io.tidemark.testkit.fault;

import static java.nio.charset.StandardCharsets.ISO_8859_1;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;
import static org.awaitility.Awaitility.await;

import com.sun.net.httpserver.HttpServer;
import io.tidemark.testkit.fault.FaultyHttpProxy.Exchange;
import io.tidemark.testkit.fault.FaultyHttpProxy.Fault;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class FaultyHttpProxyTest {

    static {
        // the JDK's server otherwise writes headers and body in two Nagle-delayed segments: 40 ms each
        System.setProperty("sun.net.httpserver.nodelay", "true");
    }

    private final AtomicInteger served = new AtomicInteger();
    private final HttpClient client = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(30))
            .build();
    private HttpServer upstream;
    private FaultyHttpProxy proxy;

    @BeforeEach
    void startUpstream() throws IOException {
        upstream = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        upstream.createContext("/", exchange -> {
            byte[] body = exchange.getRequestBody().readAllBytes();
            served.incrementAndGet();
            byte[] answer =
                    (exchange.getRequestMethod() + " " + exchange.getRequestURI() + " " + body.length).getBytes(UTF_8);
            if (exchange.getRequestMethod().equals("HEAD")) {
                exchange.sendResponseHeaders(200, -1);
            } else if (exchange.getRequestURI().getPath().startsWith("/chunked")) {
                exchange.sendResponseHeaders(200, 0); // chunked
                exchange.getResponseBody().write(answer);
            } else {
                exchange.sendResponseHeaders(200, answer.length);
                exchange.getResponseBody().write(answer);
            }
            exchange.close();
        });
        upstream.start();
    }

    @AfterEach
    void stop() {
        if (proxy != null) {
            proxy.close();
        }
        upstream.stop(0);
    }

    private FaultyHttpProxy start(FaultyHttpProxy.Builder builder) {
        proxy = builder.build().start();
        return proxy;
    }

    private URI upstreamUri() {
        return URI.create("http://127.0.0.1:" + upstream.getAddress().getPort());
    }

    private HttpResponse<String> send(String method, String path, String body) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(proxy.endpoint().resolve(path))
                .method(method, HttpRequest.BodyPublishers.ofString(body))
                .timeout(Duration.ofSeconds(30))
                .build();
        return client.send(request, HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void forwardsRequestsAndLogsWhatReachedTheServer() throws Exception {
        start(FaultyHttpProxy.to(upstreamUri()));

        assertThat(send("PUT", "/bucket/key?x-id=PutObject", "hello").body())
                .isEqualTo("PUT /bucket/key?x-id=PutObject 5");
        assertThat(send("GET", "/chunked/a", "").body()).isEqualTo("GET /chunked/a 0");

        assertThat(proxy.exchanges())
                .extracting(Exchange::method, Exchange::path, Exchange::upstreamStatus, Exchange::reachedUpstream)
                .containsExactly(tuple("PUT", "/bucket/key", 200, true), tuple("GET", "/chunked/a", 200, true));
        assertThat(proxy.inFlight()).isZero();
    }

    @Test
    void aSeededShareOfRequestsGetsErrorsAndTheSameSeedGivesTheSameFaults() throws Exception {
        List<Integer> first = statuses(7, 100);
        proxy.close();
        List<Integer> second = statuses(7, 100);

        long errors = first.stream().filter(s -> s != 200).count();
        assertThat(errors).isEqualTo(27L); // seed 7 at a 30 % rate: exactly these many of 100
        assertThat(first).containsOnly(200, 500, 503).isEqualTo(second);
        assertThat(served).hasValue(2 * (100 - (int) errors));
    }

    private List<Integer> statuses(long seed, int n) throws Exception {
        start(FaultyHttpProxy.to(upstreamUri()).seed(seed).faultRate(0.3).faults(Fault.SERVER_ERROR, Fault.SLOW_DOWN));
        List<Integer> statuses = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            HttpResponse<String> response = send("GET", "/k" + i, "");
            statuses.add(response.statusCode());
            if (response.statusCode() == 503) {
                assertThat(response.body()).contains("<Code>SlowDown</Code>");
            }
        }
        return statuses;
    }

    @Test
    void aResetAfterForwardingReachesTheServerButNotTheClient() {
        start(FaultyHttpProxy.to(upstreamUri()).faultRate(1).faults(Fault.RESET_AFTER_FORWARD));

        assertThatThrownBy(() -> send("PUT", "/bucket/key", "data")).isInstanceOf(IOException.class);
        assertThat(served).hasValue(1);
        assertThat(proxy.exchanges())
                .singleElement()
                .satisfies(e -> assertThat(e.fault()).contains(Fault.RESET_AFTER_FORWARD))
                .satisfies(e -> assertThat(e.upstreamStatus()).isEqualTo(200));
    }

    @Test
    void aResetDoesNotReachTheServer() {
        start(FaultyHttpProxy.to(upstreamUri()).faultRate(1).faults(Fault.RESET));

        assertThatThrownBy(() -> send("PUT", "/bucket/key", "data")).isInstanceOf(IOException.class);
        assertThat(served).hasValue(0);
        assertThat(proxy.exchanges()).singleElement().satisfies(e -> assertThat(e.reachedUpstream())
                .isFalse());
    }

    @Test
    void aStallOutlastsTheClientsTimeoutAndEndsWhenTheProxyCloses() {
        start(FaultyHttpProxy.to(upstreamUri()).faultRate(1).faults(Fault.STALL).stall(Duration.ofMinutes(5)));
        HttpRequest request = HttpRequest.newBuilder(proxy.endpoint().resolve("/k"))
                .timeout(Duration.ofMillis(200))
                .build();

        assertThatThrownBy(() -> client.send(request, HttpResponse.BodyHandlers.ofString()))
                .isInstanceOf(HttpTimeoutException.class);
        assertThat(proxy.inFlight()).isEqualTo(1);
        proxy.close();
        await().atMost(Duration.ofSeconds(30)).until(() -> proxy.inFlight() == 0);
        assertThat(served).hasValue(0);
    }

    @Test
    void anErrorAnsweringAHeadHasNoBodySoTheConnectionStaysUsable() throws Exception {
        start(FaultyHttpProxy.to(upstreamUri())
                .faultRate(1)
                .faults(Fault.SLOW_DOWN)
                .faultOnly(r -> r.startsWith("HEAD ")));
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), proxy.port())) {
            OutputStream out = socket.getOutputStream();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), ISO_8859_1));
            out.write("HEAD /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(ISO_8859_1));
            assertThat(in.readLine()).isEqualTo("HTTP/1.1 503 SlowDown");
            skipHeaders(in);
            out.write("GET /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(ISO_8859_1));
            assertThat(in.readLine()).isEqualTo("HTTP/1.1 200 OK");
        }
    }

    @Test
    void addsLatencyToEveryRequest() throws Exception {
        start(FaultyHttpProxy.to(upstreamUri()).latency(Duration.ofMillis(100)));
        long start = System.nanoTime();
        send("GET", "/k", "");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(100));
    }

    private static void skipHeaders(BufferedReader in) throws IOException {
        for (String line = in.readLine(); line != null && !line.isEmpty(); line = in.readLine()) {
            // headers of the answer
        }
    }
}
