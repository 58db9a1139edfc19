package io.tidemark.demo.bench;

import io.tidemark.core.process.ExternalCommand;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The engine under soak: {@code io.tidemark.cli.Main run --config …} as a child JVM, so SIGTERM
 * and SIGKILL are real. Each start is one "life" with its own log file.
 */
final class SoakEngine {

    static final String READY = "tidemark: running on host";
    private static final Pattern TIME = Pattern.compile("(?m)^(\\d\\d:\\d\\d:\\d\\d\\.\\d{3}) ");
    private static final Pattern BROKER = Pattern.compile("embedded Kafka broker on (\\S+)");

    /** One run of the engine process. */
    static final class Life {
        final int number;
        final Instant started;
        final Path log;
        final Process process;
        Instant ended;
        String endedBy; // SIGTERM, SIGKILL, exit N
        Integer exitCode;

        Life(int number, Instant started, Path log, Process process) {
            this.number = number;
            this.started = started;
            this.log = log;
            this.process = process;
        }

        boolean alive() {
            return process.isAlive();
        }

        String logText() {
            try {
                return Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        /**
         * When the engine said it was running: the time of the last log line before {@code
         * tidemark: running on host} (log times are UTC, on this machine), if it got that far.
         */
        Optional<Instant> ready() {
            String text = logText();
            int at = text.indexOf(READY);
            if (at < 0) {
                return Optional.empty();
            }
            Matcher m = TIME.matcher(text.substring(0, at));
            String last = null;
            while (m.find()) {
                last = m.group(1);
            }
            if (last == null) {
                return Optional.of(started);
            }
            LocalDate day = started.atZone(ZoneOffset.UTC).toLocalDate();
            Instant t = LocalTime.parse(last).atDate(day).toInstant(ZoneOffset.UTC);
            return Optional.of(t.isBefore(started) ? t.plus(Duration.ofDays(1)) : t);
        }

        Optional<String> bootstrap() {
            Matcher m = BROKER.matcher(logText());
            String last = null;
            while (m.find()) {
                last = m.group(1);
            }
            return Optional.ofNullable(last);
        }
    }

    private final Path config;
    private final Path logs;
    private final String classpath;
    private final List<Life> lives = new ArrayList<>();

    SoakEngine(Path config, Path logs, String classpath) {
        this.config = config;
        this.logs = logs;
        this.classpath = classpath;
    }

    List<Life> lives() {
        return lives;
    }

    Life current() {
        return lives.isEmpty() ? null : lives.get(lives.size() - 1);
    }

    Life start() {
        int n = lives.size() + 1;
        Path log = logs.resolve(String.format("engine-%03d.log", n));
        List<String> cmd = List.of(
                javaBinary(),
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-cp",
                classpath,
                "io.tidemark.cli.Main",
                "run",
                "--config",
                config.toString());
        Process p = ExternalCommand.of(cmd).start(log).process();
        Life life = new Life(n, Instant.now(), log, p);
        lives.add(life);
        return life;
    }

    /**
     * Sends SIGTERM and waits up to {@code drain}; returns false (and SIGKILLs) if it did not stop.
     */
    boolean terminate(Life life, Duration drain) {
        life.process.destroy();
        boolean stopped = waitFor(life, drain);
        if (!stopped) {
            life.process.destroyForcibly();
            waitFor(life, Duration.ofSeconds(30));
        }
        life.ended = Instant.now();
        life.endedBy = stopped ? "SIGTERM" : "SIGTERM+SIGKILL";
        life.exitCode = life.process.isAlive() ? null : life.process.exitValue();
        return stopped;
    }

    void kill(Life life) {
        life.process.destroyForcibly();
        waitFor(life, Duration.ofSeconds(30));
        life.ended = Instant.now();
        life.endedBy = "SIGKILL";
        life.exitCode = life.process.isAlive() ? null : life.process.exitValue();
    }

    /** Records that {@code life} exited by itself. */
    void exited(Life life) {
        life.ended = Instant.now();
        life.exitCode = life.process.exitValue();
        life.endedBy = "exit " + life.exitCode;
    }

    static boolean waitFor(Life life, Duration d) {
        try {
            return life.process.waitFor(d.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted waiting for the engine", e);
        }
    }

    private static String javaBinary() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }
}
