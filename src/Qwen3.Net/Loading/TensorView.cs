namespace Qwen3.Net.Loading;

/// <summary>
/// A tensor as it lies in a memory-mapped safetensors file: validated name, type, shape and a pointer into the map.
/// Valid only while the <see cref="TensorStore"/> that produced it is alive.
/// </summary>
internal readonly unsafe record struct TensorView(string Name, TensorDType DType, int[] Shape, byte* Data, long ByteLength, string FilePath)
{
    // A record may not have a pointer-typed field (CS8908), so the pointer is kept as an address and exposed
    // through the same Data property the positional parameter would have produced.
    readonly nint _address = (nint)Data;

    /// <summary>First byte of the tensor inside the mapped file.</summary>
    public byte* Data => (byte*)_address;

    public long ElementCount => Kernels.Quantized.QuantizedFormat.FromTensorType(DType) is null ? ByteLength / ElementSize(DType) : Shape.Aggregate(1L, (n, d) => n * d);

    public static int ElementSize(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => 4,
        TensorDType.F16 => 2,
        TensorDType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };
}
