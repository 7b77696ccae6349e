"""Plausible wrong answers to notebook 04's exercises; its check cells must reject each (helpers.check_exercise)."""
import torch
from torch import nn

import helpers as H


def course_schedule__reads_after_stepping(lr, epochs, gamma=0.1):
    """the rate read after scheduler.step(): each epoch's rate is the next epoch's"""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=gamma)
    lrs = []
    for _ in range(epochs):
        opt.step()
        scheduler.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def course_schedule__never_stepped(lr, epochs, gamma=0.1):
    """the course's own bug: the schedule made and never stepped"""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=gamma)
    return [opt.param_groups[0]["lr"] for _ in range(epochs)]


def one_cycle_lrs__reads_after_stepping(lr, steps):
    """the rate read after sched.step(): every batch is credited with the next batch's rate"""
    opt, sched = H.make_optimizer(nn.Linear(2, 2), lr, steps)
    lrs = []
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


def one_cycle_lrs__constant(lr, steps):
    """the peak rate throughout, as if there were no schedule"""
    return [lr] * steps
