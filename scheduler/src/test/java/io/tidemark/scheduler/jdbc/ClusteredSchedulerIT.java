package io.tidemark.scheduler.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.testkit.fixture.Fixtures;
import io.tidemark.testkit.fixture.PostgresFixture;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Two scheduler instances in separate JVMs on one PostgreSQL ({@link ClusterNode}); the one holding
 * the trigger is killed with SIGKILL between two firings; the survivor takes over. Over the whole
 * run, every fire time from the first to the last is published for every VM, and none twice.
 */
class ClusteredSchedulerIT {
    private static final Logger log = LoggerFactory.getLogger(ClusteredSchedulerIT.class);
    static final Duration DEADLINE = Duration.ofSeconds(90);

    @TempDir
    Path tmp;

    PostgresFixture postgres;
    final List<Process> children = new ArrayList<>();

    @BeforeEach
    void startPostgres() {
        postgres = QuartzTables.loadInto(Fixtures.fromEnvironment().postgres("quartz"));
    }

    @AfterEach
    void stopAll() {
        children.forEach(Process::destroyForcibly);
        for (Process p : children) {
            try {
                p.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (postgres != null) {
            postgres.close();
        }
        for (String name : List.of("a", "b")) { // what each child logged (WARN and up, and the takeover)
            Path log = tmp.resolve(name + ".log");
            try {
                if (Files.exists(log)) {
                    Files.readAllLines(log).forEach(line -> ClusteredSchedulerIT.log.info("child {}: {}", name, line));
                }
            } catch (IOException e) {
                ClusteredSchedulerIT.log.warn("cannot read {}", log, e);
            }
        }
    }

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void aKilledInstanceLosesNoFireTimeAndDoublesNone() {
        Node a = startNode("a");
        Node b = startNode("b");
        await().atMost(DEADLINE)
                .until(() -> a.ready() && b.ready() && firings(all(a, b)).size() >= 3);

        // kill the instance that fired last (it holds the acquired trigger), halfway to the next firing
        List<Line> before = all(a, b);
        Line last = before.get(before.size() - 1);
        Node victim = a.pid() == last.pid() ? a : b;
        Node survivor = victim == a ? b : a;
        long killAt = last.fireTime() + ClusterNode.INTERVAL.toMillis() / 2;
        await().atMost(DEADLINE).until(() -> System.currentTimeMillis() >= killAt);
        victim.process().destroyForcibly();
        await().atMost(DEADLINE).until(() -> !victim.process().isAlive());
        long killedAt = System.currentTimeMillis();

        // the survivor fires the fire times missed during the failover, then goes on on time
        long step = ClusterNode.INTERVAL.toMillis();
        await().atMost(DEADLINE)
                .pollInterval(Duration.ofMillis(100))
                .until(() -> survivor.lines().stream()
                                // on time again: published within one interval of its fire time (a loaded
                                // machine may add a few hundred milliseconds)
                                .filter(l -> l.fireTime() > killedAt && l.publishedAt() - l.fireTime() < step)
                                .map(Line::fireTime)
                                .distinct()
                                .count()
                        >= 3);
        survivor.process().destroyForcibly();
        await().atMost(DEADLINE).until(() -> !survivor.process().isAlive());

        List<Line> lines = all(a, b);
        assertThat(lines).extracting(Line::jobId).doesNotHaveDuplicates();
        Map<String, List<Long>> byVm = lines.stream()
                .collect(Collectors.groupingBy(
                        Line::vm, TreeMap::new, Collectors.mapping(Line::fireTime, Collectors.toList())));
        assertThat(byVm).containsOnlyKeys(ClusterNode.VMS);
        for (Map.Entry<String, List<Long>> vm : byVm.entrySet()) {
            List<Long> times = vm.getValue().stream().sorted().toList();
            long first = times.get(0);
            List<Long> expected = new ArrayList<>();
            for (long t = first; t <= times.get(times.size() - 1); t += step) {
                expected.add(t);
            }
            assertThat(times).as("fire times of %s", vm.getKey()).containsExactlyElementsOf(expected);
            assertThat(times).as("fire times of %s after the kill", vm.getKey()).anyMatch(t -> t > killedAt);
        }
        assertThat(lines).filteredOn(l -> l.fireTime() > killedAt).allMatch(l -> l.pid() == survivor.pid());
        assertThat(lines).filteredOn(l -> l.pid() == victim.pid()).isNotEmpty();
        long takeover = lines.stream()
                .filter(l -> l.fireTime() > killedAt)
                .mapToLong(Line::publishedAt)
                .min()
                .orElseThrow();
        // Quartz declares an instance failed check-in + 7.5 s after its last check-in (ADR 7)
        assertThat(takeover - killedAt)
                .as("failover time")
                .isLessThan(2 * ClusterNode.CHECKIN.toMillis() + 7_500 + 3_000);
    }

    private Node startNode(String name) {
        Path out = tmp.resolve(name + ".jobs");
        Path ready = tmp.resolve(name + ".ready");
        Path log = tmp.resolve(name + ".log");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        try {
            Process p = new ProcessBuilder(
                            java,
                            "-Xmx128m",
                            "-cp",
                            classpath,
                            ClusterNode.class.getName(),
                            postgres.jdbcUrl(),
                            out.toString(),
                            ready.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            children.add(p);
            return new Node(p, out, ready);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static List<Line> all(Node... nodes) {
        return Arrays.stream(nodes)
                .flatMap(n -> n.lines().stream())
                .sorted((x, y) -> Long.compare(x.fireTime(), y.fireTime()))
                .toList();
    }

    private static List<Long> firings(List<Line> lines) {
        return lines.stream().map(Line::fireTime).distinct().toList();
    }

    /** A child JVM and its files. */
    record Node(Process process, Path out, Path readyFile) {
        boolean ready() {
            return Files.exists(readyFile) && process.isAlive();
        }

        long pid() {
            return process.pid();
        }

        /** The complete lines published so far. */
        List<Line> lines() {
            if (!Files.exists(out)) {
                return List.of();
            }
            String text;
            try {
                text = Files.readString(out, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            int end = text.lastIndexOf('\n');
            return end < 0
                    ? List.of()
                    : text.substring(0, end).lines().map(Line::parse).toList();
        }
    }

    /** One published job: {@code <policy>/<vm>/<fire time ms> <pid> <publish time ms>}. */
    record Line(String jobId, String vm, long fireTime, long pid, long publishedAt) {
        static Line parse(String line) {
            String[] words = line.split(" ");
            String[] id = words[0].split("/");
            return new Line(words[0], id[1], Long.parseLong(id[2]), Long.parseLong(words[1]), Long.parseLong(words[2]));
        }
    }
}
