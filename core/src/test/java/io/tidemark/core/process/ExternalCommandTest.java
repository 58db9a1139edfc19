package io.tidemark.core.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExternalCommandTest {

    @TempDir
    Path tmp;

    @Test
    void capturesStdoutAndStderrSeparatelyAndSeesDirAndEnv() {
        ExternalCommand.Result r = ExternalCommand.of("sh", "-c", "echo out; echo err >&2; echo \"$X\"; pwd")
                .env("X", "from-env")
                .directory(tmp)
                .run();

        assertThat(r.exitCode()).isZero();
        assertThat(r.stdout()).isEqualTo("out\nfrom-env\n" + tmp.toAbsolutePath() + "\n");
        assertThat(r.stderr()).isEqualTo("err\n");
        assertThat(r.truncated()).isFalse();
    }

    @Test
    void aDaemonizingProgramWritesToItsOutputFileAndTheRunDoesNotWaitForTheDaemon() throws Exception {
        Path out = tmp.resolve("out.log");
        Path pidFile = tmp.resolve("daemon.pid");
        ExternalCommand.Result r = ExternalCommand.of(
                        "sh", "-c", "echo started; sleep 60 & echo $! > " + pidFile + "; echo done >&2")
                .outputFile(out)
                .timeout(Duration.ofSeconds(30))
                .run();

        assertThat(r.stdout()).isEqualTo("started\ndone\n");
        assertThat(out).hasContent("started\ndone");
        ProcessHandle.of(Long.parseLong(Files.readString(pidFile).strip())).ifPresent(ProcessHandle::destroyForcibly);
    }

    @Test
    void removedVariablesAreNotInheritedButSetOnesAre() {
        assertThat(System.getenv("HOME")).as("this test needs HOME set").isNotBlank();
        String path = ExternalCommand.of("sh", "-c", "echo \"[$HOME][$X]\"")
                .removeEnv(n -> n.equals("HOME"))
                .env("X", "set")
                .run()
                .stdout();

        assertThat(path).isEqualTo("[][set]\n");
    }

    @Test
    void outputBeyondTheLimitIsDroppedAndTheChildStillFinishes() {
        ExternalCommand.Result r = ExternalCommand.of("sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' a")
                .outputLimit(100)
                .run();

        assertThat(r.stdout()).hasSize(100);
        assertThat(r.truncated()).isTrue();
    }

    @Test
    void aNonZeroExitIsPermanentAndNamesTheCommandItsOutputAndTheHint() {
        assertThatThrownBy(() -> ExternalCommand.of("sh", "-c", "echo broken disk >&2; exit 3")
                        .hint("check the disk")
                        .ifMissing("install qemu-utils")
                        .run())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("sh -c echo broken disk >&2; exit 3")
                .hasMessageContaining("exit code 3")
                .hasMessageContaining("broken disk")
                .hasMessageContaining("check the disk")
                .message()
                .doesNotContain("install qemu-utils");
        assertThat(ExternalCommand.of("false").runForExit().exitCode()).isEqualTo(1);
        assertThat(ExternalCommand.of("true").run().exitCode()).isZero();
    }

    @Test
    void secretArgumentsNeverAppearInMessages() {
        ExternalCommand cmd = ExternalCommand.of("sh", "-c", "exit 1", "sh").secret("hunter2");

        assertThat(cmd.toString()).doesNotContain("hunter2").endsWith("sh ***");
        assertThatThrownBy(cmd::run)
                .isInstanceOf(PermanentException.class)
                .message()
                .doesNotContain("hunter2");
        assertThatThrownBy(() -> ExternalCommand.of("sh", "-c", "echo \"cannot open $1\" >&2; exit 1", "sh")
                        .secret("rbd:pool/img:key=hunter2", "rbd:pool/img")
                        .run())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("cannot open rbd:pool/img")
                .message()
                .doesNotContain("hunter2");
    }

    @Test
    void aMissingBinaryIsPermanentAndSaysWhatToInstall() {
        assertThatThrownBy(() -> ExternalCommand.of("tidemark-no-such-binary", "x")
                        .ifMissing("install tidemark-tools")
                        .run())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("cannot run tidemark-no-such-binary")
                .hasMessageContaining("install tidemark-tools");
    }

    @Test
    void aTimeoutKillsTheChildAndItsChildrenAndIsRetriable() throws Exception {
        Path pidFile = tmp.resolve("pid");
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> ExternalCommand.of("sh", "-c", "sleep 60 & echo $! > " + pidFile + "; wait")
                        .timeout(Duration.ofMillis(500))
                        .run())
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("did not finish within PT0.5S")
                .hasMessageContaining("sh -c sleep 60");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(30));
        long sleeper = Long.parseLong(Files.readString(pidFile).strip());
        assertThat(ProcessHandle.of(sleeper).map(ProcessHandle::isAlive).orElse(false))
                .as("the grandchild sleep was killed too")
                .isFalse();
    }

    @Test
    void anInterruptKillsTheChildAndKeepsTheInterruptFlag() throws Exception {
        Path pidFile = tmp.resolve("pid");
        CompletableFuture<Throwable> seen = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                ExternalCommand.of("sh", "-c", "echo $$ > " + pidFile + "; exec sleep 60")
                        .timeout(Duration.ofMinutes(5))
                        .run();
                seen.complete(null);
            } catch (RuntimeException e) {
                assertThat(Thread.currentThread().isInterrupted()).isTrue();
                seen.complete(e);
            }
        });
        t.start();
        await().atMost(Duration.ofSeconds(30))
                .until(() -> Files.exists(pidFile) && !Files.readString(pidFile).isBlank());
        t.interrupt();

        Throwable e = seen.get(30, TimeUnit.SECONDS);
        assertThat(e).isInstanceOf(RetriableException.class).hasMessageContaining("interrupted");
        long pid = Long.parseLong(Files.readString(pidFile).strip());
        assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false))
                .isFalse();
    }

    @Test
    void aStartedChildLogsToItsFileAndStopsWithinTheGrace() throws Exception {
        Path log = tmp.resolve("child.log");
        ExternalCommand.Running child = ExternalCommand.of("sh", "-c", "echo started; trap '' TERM; sleep 60")
                .start(log);
        await().atMost(Duration.ofSeconds(30)).until(() -> Files.readString(log).contains("started"));
        assertThat(child.isAlive()).isTrue();

        child.stop(Duration.ofMillis(200));

        assertThat(child.isAlive())
                .as("SIGKILL after the grace, as TERM is ignored")
                .isFalse();
        assertThat(child.exitCode()).isPresent();
    }
}
