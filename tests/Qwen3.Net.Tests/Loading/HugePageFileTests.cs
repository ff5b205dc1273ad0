using System.Globalization;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Tests.Loading;

/// <summary>
/// What the library does so that the kernel can map model files with 2 MiB entries: it advises its maps for huge
/// pages and writes its files in whole aligned chunks. (Whether the kernel then does so depends on its version and file
/// system; the effect is measured in docs/benchmarks.md, not asserted here.)
/// </summary>
public sealed class HugePageFileTests
{
    [HugePageFact("madvise(MADV_HUGEPAGE) and /proc/self/smaps are Linux's")]
    public unsafe void A_model_file_map_is_advised_for_huge_pages()
    {
        using MappedFile file = MappedFile.Open(Path.Combine(Fixtures.TinyModelFolder, "model.safetensors"), "safetensors file", 8, "header");

        VmFlags((nint)file.Start).Should().Contain("hg", "the map was advised with MADV_HUGEPAGE when it was opened");
    }

    [Fact]
    public void Writes_of_any_size_reach_the_file_in_whole_chunks_and_in_order()
    {
        var file = new RecordingStream();
        byte[] expected;
        using (var chunked = new ChunkedFileStream(file))
        {
            var written = new MemoryStream();
            var random = new Random(17);
            using (var header = new BinaryWriter(chunked, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                header.Write(0x46554747u);
                header.Write("a header");
                header.Flush(); // what GgufWriter does between its header and the tensors
            }

            written.Write(BitConverter.GetBytes(0x46554747u));
            written.WriteByte(8);
            written.Write("a header"u8);
            foreach (int size in new[] { 1, 4095, PageCache.WriteBufferBytes + 1, 3, 2 * PageCache.WriteBufferBytes, 1_000_003 })
            {
                byte[] bytes = new byte[size];
                random.NextBytes(bytes);
                chunked.Write(bytes);
                written.Write(bytes);
                chunked.Position.Should().Be(written.Length, "the position counts the bytes still in the chunk");
            }

            chunked.WriteByte(0x7F);
            written.WriteByte(0x7F);
            expected = written.ToArray();
            file.Writes.Should().OnlyContain(w => w == PageCache.WriteBufferBytes, "only full chunks are written before the end");
        }

        file.Writes.Take(file.Writes.Count - 1).Should().OnlyContain(w => w == PageCache.WriteBufferBytes);
        file.Writes[^1].Should().Be(expected.Length % PageCache.WriteBufferBytes, "the short last chunk is written on disposal");
        file.Bytes.ToArray().Should().Equal(expected);
        file.Disposed.Should().BeTrue();
    }

    private static string VmFlags(nint address)
    {
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && long.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long start)
                && long.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long end))
            {
                inside = start <= address && address < end;
            }
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal))
            {
                return line;
            }
        }

        throw new InvalidOperationException($"no mapping of /proc/self/smaps holds 0x{address:x}");
    }

    /// <summary>A stream that keeps the bytes written to it and the size of each write.</summary>
    private sealed class RecordingStream : Stream
    {
        public MemoryStream Bytes { get; } = new();

        public List<int> Writes { get; } = [];

        public bool Disposed { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Bytes.Length;

        public override long Position { get => Bytes.Length; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Writes.Add(count);
            Bytes.Write(buffer, offset, count);
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
