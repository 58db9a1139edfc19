package io.tidemark.policies;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Mutates the example policies at random (seeded, so failures reproduce) and checks that the parser
 * only ever returns a policy or throws {@link PolicyException}.
 */
class PolicyParserRobustnessTest {
    static final long SEED = 0x71DE_3A2CL;
    static final int ITERATIONS = 3_000;
    static final byte[] INTERESTING = ":-[]{}&*!|>#'\"\n\t %@`?,.0123456789smhd\\".getBytes(StandardCharsets.UTF_8);

    @Test
    void onlyPolicyExceptionEscapes() throws Exception {
        List<byte[]> seeds = new ArrayList<>();
        try (var files = Files.list(ExamplePoliciesTest.EXAMPLES)) {
            for (Path p : files.sorted().toList()) {
                seeds.add(Files.readAllBytes(p));
            }
        }
        PolicyParser parser = new PolicyParser(PolicyParserTest.CLOCK);
        Random random = new Random(SEED);
        int valid = 0;
        for (int i = 0; i < ITERATIONS; i++) {
            byte[] input = seeds.get(random.nextInt(seeds.size()));
            int mutations = 1 + random.nextInt(4);
            for (int m = 0; m < mutations; m++) {
                input = mutate(input, random);
            }
            try {
                parser.parse(Path.of("fuzz.yaml"), input);
                valid++;
            } catch (PolicyException expected) {
                assertThat(expected.problems()).isNotEmpty();
            } catch (RuntimeException e) {
                fail(
                        "iteration " + i + " (seed " + SEED + ") let " + e + " escape for input:\n"
                                + new String(input, StandardCharsets.ISO_8859_1),
                        e);
            }
        }
        assertThat(valid).as("some mutants stay valid").isPositive().isLessThan(ITERATIONS);
    }

    static byte[] mutate(byte[] in, Random random) {
        if (in.length == 0) {
            return new byte[] {INTERESTING[random.nextInt(INTERESTING.length)]};
        }
        int at = random.nextInt(in.length);
        switch (random.nextInt(6)) {
            case 0 -> { // flip a byte to anything
                byte[] out = in.clone();
                out[at] = (byte) random.nextInt(256);
                return out;
            }
            case 1 -> { // insert a YAML-significant byte
                byte[] out = new byte[in.length + 1];
                System.arraycopy(in, 0, out, 0, at);
                out[at] = INTERESTING[random.nextInt(INTERESTING.length)];
                System.arraycopy(in, at, out, at + 1, in.length - at);
                return out;
            }
            case 2 -> { // delete a range
                int len = Math.min(1 + random.nextInt(8), in.length - at);
                byte[] out = new byte[in.length - len];
                System.arraycopy(in, 0, out, 0, at);
                System.arraycopy(in, at + len, out, at, in.length - at - len);
                return out;
            }
            case 3 -> { // duplicate a range
                int len = Math.min(1 + random.nextInt(32), in.length - at);
                byte[] out = new byte[in.length + len];
                System.arraycopy(in, 0, out, 0, at + len);
                System.arraycopy(in, at, out, at + len, in.length - at);
                return out;
            }
            case 4 -> { // truncate
                return Arrays.copyOf(in, at);
            }
            default -> { // replace a byte with a YAML-significant one
                byte[] out = in.clone();
                out[at] = INTERESTING[random.nextInt(INTERESTING.length)];
                return out;
            }
        }
    }
}
