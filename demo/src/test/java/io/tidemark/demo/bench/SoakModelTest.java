package io.tidemark.demo.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The soak's restore verdict accepts only a state that may have been on the disks at the capture. */
class SoakModelTest {

    private static final Instant T0 = Instant.parse("2026-12-06T12:00:00Z");
    private static final Duration SLACK = Duration.ofSeconds(1);

    private static SoakModel history() {
        SoakModel m = new SoakModel(Map.of("sd0", "zero"));
        m.add(T0.plusSeconds(10), T0.plusSeconds(11), Map.of("sd0", "a")); // write 1
        m.add(T0.plusSeconds(20), T0.plusSeconds(21), Map.of("sd0", "b")); // write 2
        return m;
    }

    @Test
    void aStateIsAcceptedFromTheIssueOfItsWriteToTheAckOfTheNext() {
        SoakModel m = history();
        assertThat(m.judge(T0.plusSeconds(15), SLACK, Map.of("sd0", "a")).accepted())
                .isTrue();
        assertThat(m.judge(T0.plusSeconds(10), SLACK, Map.of("sd0", "a")).accepted())
                .isTrue();
        assertThat(m.judge(T0.plusSeconds(21), SLACK, Map.of("sd0", "a")).accepted())
                .isTrue();
        assertThat(m.judge(T0.plusSeconds(5), SLACK, Map.of("sd0", "zero")).accepted())
                .isTrue();
        assertThat(m.judge(T0.plusSeconds(100), SLACK, Map.of("sd0", "b")).accepted())
                .isTrue();
    }

    @Test
    void anOlderOrNewerStateOrUnknownBytesAreRejected() {
        SoakModel m = history();
        // the content before write 1 cannot be what a capture 3 s after write 2 was acknowledged saw
        SoakModel.Verdict stale = m.judge(T0.plusSeconds(24), SLACK, Map.of("sd0", "a"));
        assertThat(stale.accepted()).isFalse();
        assertThat(stale.detail()).contains("equals state [1]");
        // nor can a capture before write 2 was issued hold its bytes
        assertThat(m.judge(T0.plusSeconds(15), SLACK, Map.of("sd0", "b")).accepted())
                .isFalse();
        assertThat(m.judge(T0.plusSeconds(15), SLACK, Map.of("sd0", "garbage")).detail())
                .isEqualTo("equals no state the disks ever held");
        // one disk right, the other wrong: the point is not one moment of the VM
        SoakModel two = new SoakModel(Map.of("sd0", "z", "sd1", "z"));
        two.add(T0.plusSeconds(10), T0.plusSeconds(11), Map.of("sd0", "a", "sd1", "z"));
        assertThat(two.judge(T0.plusSeconds(30), SLACK, Map.of("sd0", "z", "sd1", "z"))
                        .accepted())
                .isFalse();
    }
}
