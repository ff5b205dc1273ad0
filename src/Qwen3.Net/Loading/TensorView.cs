namespace Qwen3.Net.Loading;

/// <summary>
/// A tensor as it lies in a memory-mapped safetensors file: validated name, type, shape and a pointer into the map.
/// Valid only while the <see cref="TensorStore"/> that produced it is alive.
/// </summary>
internal readonly unsafe record struct TensorView(string Name, TensorDType DType, int[] Shape, byte* Data, long ByteLength, string FilePath)
{
    public long ElementCount => ByteLength / (DType == TensorDType.F32 ? 4 : 2);
}
