/** The {@code peft4j} command line and its runnable examples. */
package org.peft4j.examples;
