package org.peft4j.core.io;

import ai.djl.ndarray.types.DataType;

/**
 * The element types of the safetensors format that this library reads and writes.
 *
 * <p>{@link #BF16} is read only, and is widened to float32 on read: DJL's PyTorch engine terminates
 * the JVM on any bfloat16 array (its native type switch has no bfloat16 case), so no bfloat16
 * array is ever created.
 */
public enum TensorDType {
    /** IEEE float32. */
    F32("F32", 4, DataType.FLOAT32),
    /** IEEE float16. */
    F16("F16", 2, DataType.FLOAT16),
    /** bfloat16 on disk, float32 once read. */
    BF16("BF16", 2, DataType.FLOAT32),
    /** IEEE float64. */
    F64("F64", 8, DataType.FLOAT64),
    /** Signed 64-bit integers. */
    I64("I64", 8, DataType.INT64),
    /** Signed 32-bit integers. */
    I32("I32", 4, DataType.INT32),
    /** Signed 8-bit integers. */
    I8("I8", 1, DataType.INT8),
    /** Unsigned 8-bit integers. */
    U8("U8", 1, DataType.UINT8),
    /**
     * Unsigned 16-bit integers, read only, widened to int32 (exactly). Paddle writes its bfloat16
     * tensors to safetensors as numpy {@code uint16} arrays of the same bits.
     */
    U16("U16", 2, DataType.INT32),
    /** Booleans, one byte each. */
    BOOL("BOOL", 1, DataType.BOOLEAN);

    private final String code;
    private final int byteSize;
    private final DataType arrayType;

    TensorDType(String code, int byteSize, DataType arrayType) {
        this.code = code;
        this.byteSize = byteSize;
        this.arrayType = arrayType;
    }

    /**
     * Returns the name of the type in a safetensors header, such as {@code "F32"}.
     *
     * @return the header code
     */
    public String code() {
        return code;
    }

    /**
     * Returns the number of bytes one element takes on disk.
     *
     * @return the element size in bytes
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * Returns the type of the array this library creates when it reads the tensor.
     *
     * @return the DJL data type after reading ({@code FLOAT32} for {@link #BF16})
     */
    public DataType arrayType() {
        return arrayType;
    }

    /**
     * Finds the type named in a safetensors header.
     *
     * @param code the header code, such as {@code "BF16"}
     * @return the type, or {@code null} when this library does not read it
     */
    public static TensorDType fromCode(String code) {
        for (TensorDType type : values()) {
            if (type.code.equals(code)) {
                return type;
            }
        }
        return null;
    }

    /**
     * Finds the type under which an array of the given DJL type is written.
     *
     * @param type the DJL data type of an array
     * @return the safetensors type
     * @throws IllegalArgumentException for types that have no safetensors form here, bfloat16 among
     *     them
     */
    public static TensorDType forWriting(DataType type) {
        switch (type) {
            case FLOAT32:
                return F32;
            case FLOAT16:
                return F16;
            case FLOAT64:
                return F64;
            case INT64:
                return I64;
            case INT32:
                return I32;
            case INT8:
                return I8;
            case UINT8:
                return U8;
            case BOOLEAN:
                return BOOL;
            default:
                throw new IllegalArgumentException(
                        "arrays of type "
                                + type
                                + " cannot be written to safetensors by peft4j; convert them to"
                                + " float32 or float16 first");
        }
    }
}
