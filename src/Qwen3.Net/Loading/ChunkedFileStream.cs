namespace Qwen3.Net.Loading;

/// <summary>
/// A new file written front to back that receives its bytes in whole <see cref="PageCache.WriteBufferBytes"/> chunks,
/// at offsets that are multiples of that size, whatever the sizes of the writes made to this stream. A
/// <see cref="FileStream"/>'s own buffer writes a large write straight through, from wherever the file then ends, and the
/// page cache sizes and aligns a written file's folios by its writes, so a model file written tensor by tensor that way
/// came back mapped mostly in 4 KiB pages (docs/benchmarks.md). The last, short chunk is written on disposal.
/// </summary>
internal sealed class ChunkedFileStream : Stream
{
    private readonly Stream _file;
    private readonly byte[] _chunk = GC.AllocateUninitializedArray<byte>(PageCache.WriteBufferBytes);
    private int _filled;
    private long _written;

    /// <summary>Creates (or truncates) <paramref name="path"/> for writing, unbuffered but for the chunk.</summary>
    public ChunkedFileStream(string path)
        : this(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
    {
    }

    /// <summary>Writes to <paramref name="file"/> (disposed with this stream) in chunks.</summary>
    internal ChunkedFileStream(Stream file) => _file = file;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => Position;

    /// <summary>The bytes written so far, those still in the chunk included. Setting it is not supported.</summary>
    public override long Position
    {
        get => _written + _filled;
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int take = Math.Min(buffer.Length, _chunk.Length - _filled);
            buffer[..take].CopyTo(_chunk.AsSpan(_filled));
            _filled += take;
            buffer = buffer[take..];
            if (_filled == _chunk.Length)
            {
                WriteChunk();
            }
        }
    }

    public override void WriteByte(byte value) => Write([value]);

    /// <summary>
    /// Writes nothing: a short chunk would leave every later chunk off its boundary (a <see cref="BinaryWriter"/>
    /// flushes its stream), so the chunk being filled is only written when full or at <see cref="Stream.Dispose()"/>.
    /// </summary>
    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                WriteChunk();
            }
            finally
            {
                _file.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    private void WriteChunk()
    {
        if (_filled > 0)
        {
            _file.Write(_chunk, 0, _filled);
            _written += _filled;
            _filled = 0;
        }
    }
}
