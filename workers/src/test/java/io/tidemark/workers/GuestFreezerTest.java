package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.hypervisor.CaptureConsistency;
import io.tidemark.core.hypervisor.GuestAgent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The freeze protocol on a scripted agent; the real qemu-ga is in TinyGuestConsistencyIT. */
class GuestFreezerTest {

    @TempDir
    Path dir;

    private GuestFreezer freezer;

    /** Records calls; fails what it is told to fail. */
    static final class ScriptedAgent implements GuestAgent {
        final List<String> calls = new CopyOnWriteArrayList<>();
        volatile boolean answers = true;
        volatile boolean freezeFails;
        volatile int frozenCount = 1;
        volatile int thawFailures;
        final CountDownLatch thawed = new CountDownLatch(1);
        volatile FreezeStatus status = FreezeStatus.THAWED;

        private void answer(String call) {
            calls.add(call);
            if (!answers) {
                throw new RetriableException("the guest agent of VM 'vm1' on /x/vm1.qga did not answer " + call);
            }
        }

        @Override
        public void ping(Duration deadline) {
            answer("ping");
        }

        @Override
        public FreezeStatus status(Duration deadline) {
            answer("status");
            return status;
        }

        @Override
        public int freeze(Duration deadline) {
            answer("freeze");
            if (freezeFails) {
                throw new PermanentException("the guest agent refused guest-fsfreeze-freeze: GenericError: boom");
            }
            status = FreezeStatus.FROZEN;
            return frozenCount;
        }

        @Override
        public int thaw(Duration deadline) {
            answer("thaw");
            if (thawFailures > 0) {
                thawFailures--;
                throw new RetriableException("thaw lost");
            }
            status = FreezeStatus.THAWED;
            thawed.countDown();
            return 1;
        }

        @Override
        public String describe() {
            return "the guest agent of VM 'vm1' on /x/vm1.qga";
        }
    }

    private GuestFreezer freezer(Duration limit) {
        freezer = new GuestFreezer(dir.resolve("state"), Duration.ofSeconds(5), limit, Clock.systemUTC());
        return freezer;
    }

    @Test
    void freezesAroundTheSnapshotAndThawsWithAMarkerOnlyInBetween() {
        ScriptedAgent agent = new ScriptedAgent();
        GuestFreezer f = freezer(Duration.ofMinutes(1));
        AtomicBoolean markedDuring = new AtomicBoolean();
        CaptureConsistency c = f.around(
                "vm1",
                ConsistencyPolicy.APPLICATION_PREFERRED,
                agent,
                () -> {
                    agent.calls.add("snapshot");
                    markedDuring.set(f.markedFrozen("vm1"));
                    assertThat(agent.status).isEqualTo(GuestAgent.FreezeStatus.FROZEN);
                },
                vm -> agent.calls.add("onFrozen " + vm));
        assertThat(c).isEqualTo(CaptureConsistency.application());
        assertThat(agent.calls).containsExactly("ping", "freeze", "onFrozen vm1", "snapshot", "thaw");
        assertThat(markedDuring).isTrue();
        assertThat(f.markedFrozen("vm1")).isFalse();
    }

    @Test
    void noneNeverTalksToTheAgent() {
        ScriptedAgent agent = new ScriptedAgent();
        AtomicBoolean ran = new AtomicBoolean();
        assertThat(freezer(Duration.ofMinutes(1))
                        .around("vm1", ConsistencyPolicy.CRASH, agent, () -> ran.set(true), vm -> {}))
                .isEqualTo(CaptureConsistency.crash());
        assertThat(ran).isTrue();
        assertThat(agent.calls).isEmpty();
    }

    @Test
    void aSnapshotThatFailsStillThaws() {
        ScriptedAgent agent = new ScriptedAgent();
        GuestFreezer f = freezer(Duration.ofMinutes(1));
        assertThatThrownBy(() -> f.around(
                        "vm1",
                        ConsistencyPolicy.APPLICATION_REQUIRED,
                        agent,
                        () -> {
                            throw new RetriableException("transaction failed");
                        },
                        vm -> {}))
                .hasMessage("transaction failed");
        assertThat(agent.calls).endsWith("thaw");
        assertThat(agent.status).isEqualTo(GuestAgent.FreezeStatus.THAWED);
        assertThat(f.markedFrozen("vm1")).isFalse();
    }

    @Test
    void preferredWithoutAnAgentCapturesCrashConsistentAndSaysWhy() {
        ScriptedAgent agent = new ScriptedAgent();
        agent.answers = false;
        AtomicBoolean ran = new AtomicBoolean();
        CaptureConsistency c = freezer(Duration.ofMinutes(1))
                .around("vm1", ConsistencyPolicy.APPLICATION_PREFERRED, agent, () -> ran.set(true), vm -> {});
        assertThat(ran).isTrue();
        assertThat(c.isApplication()).isFalse();
        assertThat(c.reason()).hasValueSatisfying(r -> assertThat(r)
                .contains("application consistency preferred", "no guest agent answered", "/x/vm1.qga"));
        assertThat(agent.calls).containsExactly("ping");
    }

    @Test
    void requiredWithoutAnAgentFailsBeforeTheSnapshotAndNamesTheVmAndTheRemedy() {
        ScriptedAgent agent = new ScriptedAgent();
        agent.answers = false;
        AtomicBoolean ran = new AtomicBoolean();
        GuestFreezer f = freezer(Duration.ofMinutes(1));
        assertThatThrownBy(() ->
                        f.around("vm1", ConsistencyPolicy.APPLICATION_REQUIRED, agent, () -> ran.set(true), vm -> {}))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("VM 'vm1' requires application consistency")
                .hasMessageContaining("install and start qemu-guest-agent")
                .hasMessageContaining("application-preferred");
        assertThat(ran).isFalse();
        assertThat(f.markedFrozen("vm1")).isFalse();
    }

    @Test
    void aFailedFreezeIsThawedAndFailsARequiredCapture() {
        ScriptedAgent agent = new ScriptedAgent();
        agent.freezeFails = true;
        AtomicBoolean ran = new AtomicBoolean();
        GuestFreezer f = freezer(Duration.ofMinutes(1));
        assertThatThrownBy(() ->
                        f.around("vm1", ConsistencyPolicy.APPLICATION_REQUIRED, agent, () -> ran.set(true), vm -> {}))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("could not be frozen");
        assertThat(ran).isFalse();
        assertThat(agent.calls).containsExactly("ping", "freeze", "thaw");
        assertThat(f.markedFrozen("vm1")).isFalse();
    }

    @Test
    void theWatchdogThawsAHangingSnapshotWhichIsThenOnlyCrashConsistent() throws Exception {
        ScriptedAgent agent = new ScriptedAgent();
        GuestFreezer f = freezer(Duration.ofMillis(200));
        CaptureConsistency c = f.around(
                "vm1",
                ConsistencyPolicy.APPLICATION_PREFERRED,
                agent,
                () -> {
                    try {
                        // the "transaction" hangs until the watchdog has thawed the guest
                        assertThat(agent.thawed.await(60, TimeUnit.SECONDS)).isTrue();
                    } catch (InterruptedException e) {
                        throw new AssertionError(e);
                    }
                },
                vm -> {});
        assertThat(c.isApplication()).isFalse();
        assertThat(c.reason()).hasValueSatisfying(r -> assertThat(r).contains("watchdog"));
        assertThat(agent.calls).containsExactly("ping", "freeze", "thaw"); // thawed once, by the watchdog
        assertThat(f.markedFrozen("vm1")).isFalse();
    }

    @Test
    void aFailedThawKeepsTheMarkerAndTheNextStartThawsTheVm() {
        ScriptedAgent agent = new ScriptedAgent();
        agent.thawFailures = 3;
        GuestFreezer f = freezer(Duration.ofMinutes(1));
        assertThat(f.around("vm1", ConsistencyPolicy.APPLICATION_PREFERRED, agent, () -> {}, vm -> {})
                        .isApplication())
                .isTrue();
        assertThat(agent.status).isEqualTo(GuestAgent.FreezeStatus.FROZEN);
        assertThat(f.markedFrozen("vm1")).isTrue();
        assertThat(Files.exists(dir.resolve("state/vm1.frozen"))).isTrue();

        // a new worker on the same state directory
        GuestFreezer next = new GuestFreezer(dir.resolve("state"));
        assertThat(next.thawLeftovers(vm -> agent)).containsExactly("vm1");
        assertThat(agent.status).isEqualTo(GuestAgent.FreezeStatus.THAWED);
        assertThat(f.markedFrozen("vm1")).isFalse();
    }
}
