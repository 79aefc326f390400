using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Contracts.Payments;

namespace Envio.Benchmark;

/// <summary>Payments of about 310 bytes of JSON (a benchmark order's is about 410): one row each, the payer's document sealed, no child rows.</summary>
internal static class BenchPayments
{
    public static DataObjectType<Payment> Type { get; } = (DataObjectType<Payment>)DataObjectTypes.Registered.ByName("payment")!;

    public static Payment Create(int i, DateTimeOffset createdAt) => new()
    {
        PaymentId = Guid.CreateVersion7(),
        Reference = $"INV-{i:D9}",
        Method = PaymentMethod.Pix,
        Amount = 10m + i % 10_000 * 0.37m,
        Currency = "BRL",
        Payer = new Payer { Name = $"Payer {i} of the benchmark", Document = $"{i:D11}" },
        DueDate = new DateOnly(2026, 12, 1).AddDays(i % 60),
        Note = $"Instalment {1 + i % 12} of the benchmark",
        CreatedAt = createdAt,
    };
}
