namespace Qwen3.Net.Tests.Tokenization;

public sealed class StreamedListTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1023)]
    [InlineData(4096)]
    [InlineData(150_001)]
    public async Task A_reader_on_another_thread_sees_every_item_in_order(int count)
    {
        var list = new StreamedList<int>();
        Task<List<int>> reader = Task.Factory.StartNew(() => list.ToList(), TaskCreationOptions.LongRunning);
        for (int i = 0; i < count; i++)
        {
            list.Add(i);
            if (i % 5000 == 0)
            {
                Thread.Yield(); // let the reader catch up and wait, so the wake-up path is exercised
            }
        }

        list.Complete();

        List<int> read = await reader.WaitAsync(TimeSpan.FromSeconds(30));
        read.Should().Equal(Enumerable.Range(0, count));
        list.Should().HaveCount(count);
        if (count > 0)
        {
            list[count - 1].Should().Be(count - 1);
        }
    }

    [Fact]
    public async Task Abandoning_makes_a_waiting_reader_throw_rather_than_see_a_partial_list()
    {
        var list = new StreamedList<string>();
        list.Add("first");
        var result = new TaskCompletionSource<List<string>>();
        var thread = new Thread(() =>
        {
            try
            {
                result.SetResult(list.ToList());
            }
            catch (Exception e)
            {
                result.SetException(e);
            }
        });
        thread.Start();
        Task<List<string>> reader = result.Task;

        // The item is not published yet (the writer publishes in batches): the reader blocks waiting for more.
        SpinWait.SpinUntil(() => (thread.ThreadState & ThreadState.WaitSleepJoin) != 0, TimeSpan.FromSeconds(30)).Should().BeTrue();
        list.Abandon();

        Func<Task> wait = () => reader.WaitAsync(TimeSpan.FromSeconds(30));
        await wait.Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public void Abandoning_a_complete_list_changes_nothing()
    {
        var list = new StreamedList<int>();
        list.Add(7);
        list.Complete();

        list.Abandon();

        list.ToList().Should().Equal(7);
    }

    [Fact]
    public void Indexing_past_the_end_throws()
    {
        var list = new StreamedList<int>();
        list.Add(1);

        Action read = () => _ = list[1];

        read.Should().Throw<ArgumentOutOfRangeException>();
    }
}
