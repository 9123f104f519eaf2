/**
 * Reading adapter configs from JSON with errors that name the file and the field, and the registry
 * of PEFT methods that {@code peft_type} dispatches to.
 */
package org.peft4j.core.config;
