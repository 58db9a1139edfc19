package io.tidemark.policies;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.code_intelligence.jazzer.mutation.annotation.NotNull;
import java.nio.file.Path;

/**
 * Fuzzes {@link PolicyParser#parse(Path, byte[])}: for any bytes it must return a policy or throw
 * {@link PolicyException}; any other exception or error is a finding.
 *
 * <p>In a normal {@code mvn verify} Jazzer runs in regression mode: it replays each file of the
 * corpus {@code src/test/resources/io/tidemark/policies/PolicyParserFuzzTestInputs/parse/} once (the
 * example policies as seeds, plus every crash found so far: keep them) and takes about 4 s.
 *
 * <p>Fuzzing is opt-in, one fuzz test per JVM, 30 s by default ({@code maxDuration}); {@code
 * JAZZER_MAX_DURATION} overrides it for a longer local run:
 *
 * <pre>
 * JAZZER_FUZZ=1 mvn -B -o test -pl policies -Dtest=PolicyParserFuzzTest -Dspotless.check.skip=true
 * JAZZER_FUZZ=1 JAZZER_MAX_DURATION=30m mvn -B -o test -pl policies -Dtest=PolicyParserFuzzTest \
 *     -Dspotless.check.skip=true
 * </pre>
 *
 * A finding fails the run and is written to the corpus directory above as {@code crash-<sha1>}: fix
 * the parser, keep the file. The generated corpus goes to {@code policies/.cifuzz-corpus/} (not to
 * be committed). What is instrumented is set in {@code src/test/resources/junit-platform.properties}.
 */
class PolicyParserFuzzTest {
    private static final Path FILE = Path.of("policies/fuzz.yaml");
    private final PolicyParser parser = new PolicyParser();

    @FuzzTest(maxDuration = "30s")
    void parse(byte @NotNull [] yaml) {
        try {
            parser.parse(FILE, yaml);
        } catch (PolicyException expected) {
            // bad input, reported with its position: the contract
        }
    }
}
