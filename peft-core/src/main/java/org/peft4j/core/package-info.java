/**
 * The method-independent core of peft4j: {@link org.peft4j.core.PeftConfig}, the immutable and
 * JSON-serialisable description of an adapter; {@link org.peft4j.core.PeftModel}, a DJL block that
 * wraps a base model with an adapter; and {@link org.peft4j.core.PeftMethod}, the service through
 * which {@code peft_type} finds the module implementing a method (LoRA, prefix tuning). {@link
 * org.peft4j.core.AdapterNames} names the adapters of a model that holds several, and lays out
 * their save.
 */
package org.peft4j.core;
