// A reader of a group's committed offsets that is not librdkafka: Kafka's own Java Admin client.
// Compiled and run by tests/integration/test_offset_metadata.py against ci/kafka's classpath.
//
//   java OffsetMetadataReader <bootstrap servers> <group id>
//
// prints one line per committed partition, sorted:
//   OFFSET <topic> <partition> <offset> <metadata as UTF-8 bytes in hex, or "-" when empty>

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

public class OffsetMetadataReader {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        try (Admin admin = Admin.create(props)) {
            Map<TopicPartition, OffsetAndMetadata> offsets = admin
                .listConsumerGroupOffsets(args[1])
                .partitionsToOffsetAndMetadata()
                .get(60, TimeUnit.SECONDS);
            TreeMap<String, String> lines = new TreeMap<>();
            for (Map.Entry<TopicPartition, OffsetAndMetadata> entry : offsets.entrySet()) {
                TopicPartition tp = entry.getKey();
                OffsetAndMetadata om = entry.getValue();
                StringBuilder hex = new StringBuilder();
                if (om != null) {
                    for (byte b : om.metadata().getBytes(StandardCharsets.UTF_8)) {
                        hex.append(String.format("%02x", b));
                    }
                }
                String key = tp.topic() + " " + String.format("%010d", tp.partition());
                lines.put(key, "OFFSET " + tp.topic() + " " + tp.partition() + " "
                    + (om == null ? -1 : om.offset()) + " "
                    + (hex.length() == 0 ? "-" : hex.toString()));
            }
            for (String line : lines.values()) {
                System.out.println(line);
            }
        }
    }
}
