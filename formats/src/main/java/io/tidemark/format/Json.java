package io.tidemark.format;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import io.tidemark.core.event.FailureReason;
import java.io.IOException;
import java.util.Arrays;

/** The one JSON configuration for manifests, config and events: ISO-8601 times, tolerant readers. */
public final class Json {

    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .addModule(new JavaTimeModule())
            .addModule(new Jdk8Module())
            .addModule(new SimpleModule("tidemark-open-enums")
                    .addDeserializer(FailureReason.class, new OpenEnumDeserializer<>(FailureReason.class)))
            .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
            // a newer writer of the same major format version may add fields: ignore them
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_CREATOR_PROPERTIES)
            .build();

    private Json() {}

    public static ObjectMapper mapper() {
        return MAPPER;
    }

    /**
     * An enum a newer writer may extend within the same format version: a constant this reader
     * does not know reads as absent (null, or an empty {@code Optional}) instead of failing the
     * whole record.
     */
    private static final class OpenEnumDeserializer<E extends Enum<E>> extends StdDeserializer<E> {
        private static final long serialVersionUID = 1L;
        private final Class<E> type;

        OpenEnumDeserializer(Class<E> type) {
            super(type);
            this.type = type;
        }

        @Override
        public E deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            String name = p.getValueAsString();
            return Arrays.stream(type.getEnumConstants())
                    .filter(c -> c.name().equals(name))
                    .findFirst()
                    .orElse(null);
        }
    }
}
