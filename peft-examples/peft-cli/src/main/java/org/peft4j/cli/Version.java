package org.peft4j.cli;

import picocli.CommandLine;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/**
 * The version of this build, which the build writes into {@code version.properties} beside this
 * class (Maven resource filtering), so that {@code peft4j --version} cannot drift from the POM.
 */
public final class Version implements CommandLine.IVersionProvider {

    private static final String RESOURCE = "version.properties";

    /** Creates the provider; picocli calls this. */
    public Version() {}

    /**
     * Returns the version of peft4j this class was built as.
     *
     * @return the Maven project version, such as {@code 0.1.0-SNAPSHOT}
     * @throws IllegalStateException if the build did not write {@code version.properties}
     */
    public static String get() {
        Properties properties = new Properties();
        try (InputStream in = Version.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(
                        RESOURCE + " is missing beside " + Version.class.getName() + "; rebuild");
            }
            properties.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
        String version = properties.getProperty("version");
        if (version == null || version.isBlank() || version.startsWith("${")) {
            throw new IllegalStateException(
                    RESOURCE + " holds no version (" + version + "); rebuild with Maven");
        }
        return version;
    }

    /** {@inheritDoc} */
    @Override
    public String[] getVersion() {
        return new String[] {"peft4j " + get()};
    }
}
