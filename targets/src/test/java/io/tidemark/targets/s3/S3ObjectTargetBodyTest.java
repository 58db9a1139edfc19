package io.tidemark.targets.s3;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.core.sync.RequestBody;

class S3ObjectTargetBodyTest {

    @Test
    void aPutsBodyIsTheCallersBytesNotACopyAndRereadableLikeFromBytes() throws IOException {
        byte[] data = {1, 2, 3, 4};
        RequestBody body = S3ObjectTarget.body(data);
        data[0] = 9; // seen by the body: no copy was made (RequestBody.fromBytes copies)
        for (int read = 0; read < 2; read++) { // once for the payload hash and checksum, once to send
            try (InputStream in = body.contentStreamProvider().newStream()) {
                assertThat(in.readAllBytes()).containsExactly(9, 2, 3, 4);
            }
        }
        RequestBody copied = RequestBody.fromBytes(data);
        assertThat(body.optionalContentLength()).isEqualTo(copied.optionalContentLength());
        assertThat(body.contentType()).isEqualTo(copied.contentType());
    }
}
