//! The report of a flash sale: each phase's table, the checks, the sale's
//! CPU and the server's memory, printed and, when asked, written as JSON.

use serde_json::json;
use uuid::Uuid;

use super::sale::Sale;
use super::{Check, FlashSaleArgs, Phases};
use crate::common::write_json;
use crate::machine::Memory;
use crate::stats::print_table;
use crate::BoxError;

/// Prints the report (and writes it when asked); returns whether every
/// check passed.
pub(super) fn report(
    args: &FlashSaleArgs,
    concert_id: Uuid,
    phases: &Phases,
    sale: &Sale,
    checks: &[Check],
) -> Result<bool, BoxError> {
    for (name, phase) in &phases.0 {
        print_table(
            &format!("phase {name} ({:.1} s)", phase.seconds),
            &phase.endpoints,
        );
    }
    println!("\ninvariants:");
    for check in checks {
        println!(
            "  [{}] {}: {}",
            if check.passed { "ok" } else { "FAIL" },
            check.name,
            check.detail
        );
    }
    println!(
        "\nsale phase: {} requests, machine busy {:.0} % of all cores (every process)",
        sale.requests, sale.machine_busy_percent
    );
    if let Some(cpu) = &sale.cpu {
        cpu.print();
    }
    let memory = args.server_pid.and_then(Memory::read);
    if let Some(memory) = &memory {
        memory.print();
    }
    let passed = checks.iter().all(|c| c.passed);
    println!("\nflash sale {}", if passed { "PASSED" } else { "FAILED" });
    if let Some(path) = &args.json {
        write_json(
            path,
            &json!({
                "command": "flash-sale",
                "args": args,
                "concert_id": concert_id,
                "bought": sale.bought().len(),
                "sold_out": sale.sold_out(),
                "failed": sale.failures(),
                "sale_seconds": sale.seconds,
                "purchases_per_second": sale.purchases_per_second(),
                "phases": phases,
                "checks": checks,
                "passed": passed,
                "server_memory": memory,
                "sale_cpu": sale.cpu,
                "sale_machine_busy_percent": sale.machine_busy_percent,
            }),
        )?;
    }
    Ok(passed)
}
