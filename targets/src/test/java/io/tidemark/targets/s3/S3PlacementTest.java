package io.tidemark.targets.s3;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.target.ColdStorage.Placement;
import io.tidemark.core.target.ColdStorage.Readability;
import java.time.Instant;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** How a HEAD's storage class and {@code x-amz-restore} header read as a placement. */
class S3PlacementTest {

    @Test
    void aMissingStorageClassIsStandardAndReadable() {
        assertThat(S3ObjectTarget.placement(null, null))
                .isEqualTo(new Placement("STANDARD", Readability.READABLE, Optional.empty()));
        assertThat(S3ObjectTarget.placement("STANDARD_IA", null).readable()).isTrue();
    }

    @Test
    void anArchivedObjectNeedsARestoreUntilTheRestoreCompletes() {
        assertThat(S3ObjectTarget.placement("GLACIER", null).readability()).isEqualTo(Readability.ARCHIVED);
        assertThat(S3ObjectTarget.placement("DEEP_ARCHIVE", "ongoing-request=\"true\"")
                        .readability())
                .isEqualTo(Readability.RESTORING);
        Placement restored = S3ObjectTarget.placement(
                "GLACIER", "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"");
        assertThat(restored.readability()).isEqualTo(Readability.RESTORED);
        assertThat(restored.readable()).isTrue();
        assertThat(restored.restoredUntil()).hasValue(Instant.parse("2012-12-21T00:00:00Z"));
    }
}
