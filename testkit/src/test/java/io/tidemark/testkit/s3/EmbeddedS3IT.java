package io.tidemark.testkit.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EmbeddedS3IT {

    @TempDir
    Path baseDir;

    @Test
    void servesS3OnLoopbackAndRefusesAnonymousRequests() throws IOException, InterruptedException {
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("bucket");

            HttpResponse<String> response = HttpClient.newHttpClient()
                    .send(
                            HttpRequest.newBuilder(URI.create(s3.endpoint() + "/bucket"))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString());

            assertThat(s3.endpoint()).hasHost("127.0.0.1").hasPort(s3.port());
            assertThat(response.statusCode()).isEqualTo(403);
            assertThat(response.body()).contains("AccessDenied");
            assertThat(s3.secretKey()).isNotEqualTo(EmbeddedS3.builder().build().secretKey());
        }
    }

    @Test
    void theFilesystemBackEndKeepsBucketsUnderTheBaseDirectory() {
        try (EmbeddedS3 s3 = EmbeddedS3.builder()
                .filesystem(baseDir)
                .credentials("id", "secret")
                .build()
                .start()) {
            s3.createBucket("on-disk");

            assertThat(baseDir.resolve("on-disk")).isDirectory();
            assertThat(s3.accessKey()).isEqualTo("id");
            assertThat(s3.secretKey()).isEqualTo("secret");
        }
    }

    @Test
    void misuseIsReported() {
        EmbeddedS3 s3 = EmbeddedS3.builder().build();
        assertThatThrownBy(s3::endpoint)
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("start()");
        s3.start();
        try {
            assertThatThrownBy(s3::start).isInstanceOf(IllegalStateException.class);
        } finally {
            s3.close();
            s3.close();
        }
    }
}
