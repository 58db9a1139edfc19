package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProgressBarsTest {

    @Test
    void eachStepLabelGetsItsOwnBarAndALongStepALine() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressBars bars = new ProgressBars(new PrintStream(bytes, true, StandardCharsets.UTF_8), true);

        bars.restored("group data", 1 << 20, 1 << 20);
        bars.restored("drill sd0", 0, 4 << 20);
        bars.starting("drill: booting the check guest");

        String out = bytes.toString(StandardCharsets.UTF_8);
        assertThat(out)
                .contains("\rgroup data [" + "#".repeat(30) + "] 100% 1.0 MiB/1.0 MiB")
                .contains("\rdrill sd0 [" + " ".repeat(30) + "]   0% 0 B/4.0 MiB")
                .endsWith("drill: booting the check guest\n");
    }

    @Test
    void disabledBarsPrintNothing() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressBars bars = new ProgressBars(new PrintStream(bytes, true, StandardCharsets.UTF_8), false);
        bars.restored("group data", 1, 2);
        bars.starting("drill: booting the check guest");
        assertThat(bytes.size()).isZero();
    }
}
