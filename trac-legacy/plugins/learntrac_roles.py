# -*- coding: utf-8 -*-
"""LearnTrac's roles in Trac: teachers assign and judge concepts, students work on their own.

A teacher is anyone holding TICKET_ADMIN (the `teachers` group has it; TRAC_ADMIN implies
it). Everyone else signed in is a student, who may view concepts and comment on the
concepts they own - nothing more: no new tickets, no reassigning, no edits to summaries,
descriptions or learning fields (the tutor puts those in other students' prompts), no
workflow actions (shared.ini's actions need TICKET_ADMIN as well). Visitors who have not
signed in see the wiki only: a concept names its student (owner, comments, mastery), and
the load balancer answers the whole internet, so tickets and reports - and through them
the query, the timeline's and the search's ticket entries, milestones' ticket counts and
ticket attachments - are for people signed in.

Trac's default permissions give every signed-in user TICKET_CREATE and TICKET_MODIFY; this
policy runs before Trac's own, so the rule holds whatever the permission table says, in
every environment that inherits shared.ini ([trac] permission_policies names it first).

Also: Trac's query page includes the batch-modify form's markup but loads its script only
for TICKET_BATCH_MODIFY holders, so every other user's /query threw a JavaScript error;
the script (and its setting) is added for them.

Assigning (ConceptAssignment): a teacher's New Ticket form takes several students in its
"assign to" box ("alice, bob"), and each student gets a concept of their own; prerequisites
are picked from the student's existing concepts instead of typed as ticket numbers.

Python 2.7 (the production image's Trac 1.4) and 3 (the local runtime's Trac 1.6) alike.
"""

import json
import re
import threading

from trac.core import Component, implements
from trac.perm import IPermissionPolicy, PermissionSystem
from trac.ticket.api import ITicketChangeListener, ITicketManipulator
from trac.ticket.model import Ticket
from trac.web.api import IRequestFilter, IRequestHandler
from trac.web.chrome import Chrome, add_notice, add_script, add_script_data, add_warning

# Ticket actions only teachers have.
TEACHER_ONLY = frozenset([
    'TICKET_CREATE', 'TICKET_MODIFY', 'TICKET_CHGPROP', 'TICKET_EDIT_DESCRIPTION',
    'TICKET_EDIT_CC', 'TICKET_BATCH_MODIFY', 'TICKET_EDIT_COMMENT',
])
# Ticket actions a student has on the concepts they own.
OWN_ONLY = frozenset(['TICKET_APPEND'])
# What a visitor who has not signed in never has, whatever the permission table says
# (Trac's defaults give anonymous TICKET_VIEW and REPORT_VIEW). Trac checks TICKET_VIEW on
# each ticket it lists in a query, report, timeline, search or milestone, and on a ticket's
# attachments, so this one rule keeps students' names off every page; a report is denied
# whole because one without a ticket column is not filtered per ticket.
ANONYMOUS_NEVER = frozenset(['TICKET_VIEW', 'REPORT_VIEW', 'REPORT_SQL_VIEW'])


class LearnTracRolesPolicy(Component):
    implements(IPermissionPolicy, IRequestFilter)

    # IPermissionPolicy

    def check_permission(self, action, username, resource, perm):
        if action in ANONYMOUS_NEVER and username in (None, 'anonymous'):
            return False
        if action not in TEACHER_ONLY and action not in OWN_ONLY:
            return None
        if resource is not None and resource.realm != 'ticket':
            return None
        if self._is_teacher(username):
            return None
        if action in TEACHER_ONLY:
            return False
        # TICKET_APPEND: on a concept the student owns; the form's realm-level check
        # (no ticket yet) is left to Trac's own policy.
        if resource is None or resource.id is None:
            return None
        return None if self._owner(resource.id) == username else False

    def _is_teacher(self, username):
        if username in (None, 'anonymous'):
            return False
        perms = PermissionSystem(self.env).get_user_permissions(username)
        return bool(perms.get('TICKET_ADMIN') or perms.get('TRAC_ADMIN'))

    def _owner(self, ticket_id):
        try:
            tid = int(ticket_id)
        except (TypeError, ValueError):
            return None
        for owner, in self.env.db_query("SELECT owner FROM ticket WHERE id=%s", (tid,)):
            return owner
        return None

    # IRequestFilter

    def pre_process_request(self, req, handler):
        return handler

    def post_process_request(self, req, template, data, *args):
        if req.path_info == '/query' and template is not None:
            # The script and its setting (auto_preview_timeout), as Trac adds them for
            # the batch-modify form's owners.
            Chrome(self.env).add_auto_preview(req)
        return (template, data) + args


# A New Ticket form's concept waiting to be inserted, with what its copies need:
# (ticket, [more owners], prerequisites as typed, req), set while validating and taken
# when Trac reports the insert. Trac serves a request on one thread; each request starts
# with it cleared, and only the very ticket validated is acted on.
_pending = threading.local()
# Students are named as login names, separated by commas (or semicolons).
_OWNER_SPLIT = re.compile(r'[,;]')
_TICKET_REF = re.compile(r'\d+')
# Concepts the picker lists for one student; a school's student has tens.
PICKER_LIMIT = 500


def _ticket_ids(text):
    # As the service reads them: "#2, #5", "[2, 5]", "2 5".
    return [int(n) for n in _TICKET_REF.findall(text or '')]


def _owners(text):
    """The students named in "assign to", each once, in order; and any name with a space."""
    names, odd = [], []
    for part in _OWNER_SPLIT.split(text or ''):
        name = part.strip()
        if not name or name in names:
            continue
        if len(name.split()) > 1:
            odd.append(name)
        names.append(name)
    return names, odd


class ConceptAssignment(Component):
    """A teacher gives one concept to several students, prerequisites picked from theirs.

    "alice, bob" in the New Ticket form's "assign to" box makes one ticket each (a concept
    is one student's work: its owner, status and mastery are hers). A prerequisite names a
    concept of the same student, so each ticket's prerequisites become its student's
    concepts of the same summary; one a student lacks is left out, and the teacher is told.
    """
    implements(IRequestFilter, IRequestHandler, ITicketManipulator, ITicketChangeListener)

    # IRequestFilter

    def pre_process_request(self, req, handler):
        _pending.value = None
        return handler

    def post_process_request(self, req, template, data, *args):
        if (template == 'ticket.html' and data
                and req.perm.has_permission('TICKET_ADMIN')):
            ticket = data.get('ticket')
            add_script_data(req, learntrac_picker={
                'concepts_url': req.href('teacher', 'concepts'),
                'ticket': ticket.id if ticket is not None and ticket.exists else None,
                'owner': ticket['owner'] if ticket is not None and ticket.exists else '',
            })
            add_script(req, '/teacher/assign.js')
        return (template, data) + args

    # IRequestHandler: the picker's script and the concepts it lists, for teachers only.

    def match_request(self, req):
        return req.path_info in ('/teacher/assign.js', '/teacher/concepts')

    def process_request(self, req):
        if req.path_info == '/teacher/assign.js':
            req.send(PICKER_JS.encode('utf-8'), 'text/javascript', 200)
        if not req.perm.has_permission('TICKET_ADMIN'):
            self._json(req, {'error': "only teachers list students' concepts"}, 403)
        owner = (req.args.get('owner') or '').strip()
        concepts = [
            {'id': tid, 'summary': summary, 'status': status}
            for tid, summary, status in self.env.db_query(
                "SELECT id, summary, status FROM ticket WHERE owner=%s ORDER BY id LIMIT %s",
                (owner, PICKER_LIMIT))
        ]
        self._json(req, {'owner': owner, 'concepts': concepts}, 200)

    def _json(self, req, value, status):
        req.send(json.dumps(value).encode('utf-8'), 'application/json', status)

    # ITicketManipulator

    def prepare_ticket(self, req, ticket, fields, actions):
        pass

    def validate_ticket(self, req, ticket):
        if req.method != 'POST' or not ticket['owner']:
            return []
        if ticket.exists and 'owner' not in ticket._old:
            return []
        owners, odd = _owners(ticket['owner'])
        if odd:
            return [('owner', 'Separate students with commas: "%s" is not one login.'
                     % odd[0])]
        if ticket.exists and len(owners) > 1:
            return [('owner', 'A concept is one student\'s: to give it to others, create '
                              'it for them on New Ticket.')]
        if len(owners) > 1 and not req.perm.has_permission('TICKET_ADMIN'):
            return [('owner', 'Only teachers assign a concept to several students.')]
        # "alice," and "alice, alice" are alice: the owner is compared as a login.
        ticket['owner'] = owners[0] if owners else ''
        if (not ticket.exists and len(owners) > 1 and 'preview' not in req.args
                and not getattr(req, 'is_xhr', False)):
            _pending.value = (ticket, owners[1:], ticket['prerequisite_concepts'], req)
        return []

    def _for_student(self, prerequisites, owner):
        """The student's own concepts for `prerequisites` ("#2, #5"), and what she lacks.

        A number that is no ticket is kept as typed, as Trac keeps it for one student.
        """
        kept, left_out = [], []
        for tid in _ticket_ids(prerequisites):
            rows = list(self.env.db_query(
                "SELECT summary, owner FROM ticket WHERE id=%s", (tid,)))
            if not rows or rows[0][1] == owner:
                kept.append(tid)
                continue
            same = list(self.env.db_query(
                "SELECT id FROM ticket WHERE owner=%s AND summary=%s ORDER BY id DESC LIMIT 1",
                (owner, rows[0][0])))
            if same:
                kept.append(same[0][0])
            else:
                left_out.append(rows[0][0])
        return ', '.join('#%d' % t for t in kept), left_out

    # ITicketChangeListener

    def ticket_created(self, ticket):
        pending = getattr(_pending, 'value', None)
        if not pending or pending[0] is not ticket:
            return
        _pending.value = None
        _, others, typed, req = pending
        # Trac notifies about this ticket after its listeners ran: it reads the mapped value.
        mine, lacking = self._for_student(typed, ticket['owner'])
        left_out = {ticket['owner']: lacking}
        if mine != (typed or ''):
            self._set_prerequisites(ticket.id, mine)
            ticket['prerequisite_concepts'] = mine
        made = [(ticket.id, ticket['owner'])]
        for owner in others:
            copy = Ticket(self.env)
            for name, value in ticket.values.items():
                if name not in ('time', 'changetime'):
                    copy[name] = value
            copy['owner'] = owner
            copy['prerequisite_concepts'], left_out[owner] = self._for_student(typed, owner)
            try:
                copy.insert()
            except Exception as e:
                self.log.error("Copy of #%s for %s not created: %s", ticket.id, owner, e)
                add_warning(req, 'No concept was created for %s: %s. The others were; create '
                                 'it for %s alone to retry.' % (owner, e, owner))
                continue
            made.append((copy.id, owner))
            self._notify(copy, req)
        add_notice(req, 'One concept each: %s.' % ', '.join(
            '#%d for %s' % (tid, owner) for tid, owner in made))
        for owner, summaries in sorted(left_out.items()):
            if summaries:
                add_notice(req, '%s has no concept named %s, so it is not a prerequisite '
                                'of theirs.' % (owner, ', '.join('"%s"' % s for s in summaries)))

    def _set_prerequisites(self, ticket_id, value):
        with self.env.db_transaction as db:
            db("DELETE FROM ticket_custom WHERE ticket=%s AND name=%s",
               (ticket_id, 'prerequisite_concepts'))
            db("INSERT INTO ticket_custom (ticket, name, value) VALUES (%s, %s, %s)",
               (ticket_id, 'prerequisite_concepts', value))

    def _notify(self, ticket, req):
        # As Trac does for the ticket its form created: the student hears of each copy.
        try:
            from trac.notification.api import NotificationSystem
            from trac.ticket.notification import TicketChangeEvent
            NotificationSystem(self.env).notify(
                TicketChangeEvent('created', ticket, ticket['time'], req.authname))
        except Exception as e:
            self.log.error("Notification of #%s failed: %s", ticket.id, e)

    def ticket_changed(self, ticket, comment, author, old_values):
        pass

    def ticket_deleted(self, ticket):
        pass

    def ticket_comment_modified(self, ticket, cdate, author, comment, old_comment):
        pass

    def ticket_change_deleted(self, ticket, cdate, changes):
        pass


# The teacher's form: a hint by "assign to", and the prerequisites as the student's own
# concepts to tick (the text field stays, and stays the value Trac saves).
PICKER_JS = r"""
(function () {
  'use strict';
  // Trac puts scripts in the head: the form is there once the document is parsed.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
  function start() {
    var cfg = window.learntrac_picker;
    var field = document.getElementById('field-prerequisite_concepts');
    if (!cfg || !field) return;
    var assign = document.getElementById('action_create_and_assign_reassign_owner') ||
      document.getElementById('action_reassign_reassign_owner');
    if (assign && !cfg.ticket) {
      var hint = document.createElement('div');
      hint.className = 'learntrac-hint';
      hint.textContent = 'One student, or several separated by commas: each gets a concept of their own.';
      assign.parentNode.appendChild(hint);
    }
    var box = document.createElement('div');
    box.id = 'prerequisite-picker';
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', 'Prerequisites');
    field.parentNode.appendChild(box);

    function ids() {
      return (field.value.match(/\d+/g) || []).map(Number);
    }
    function setIds(list) {
      field.value = list.map(function (n) { return '#' + n; }).join(', ');
    }
    function owner() {
      if (assign && assign.value.trim()) {
        return assign.value.split(/[,;]/).map(function (n) { return n.trim(); }).filter(Boolean)[0] || '';
      }
      return cfg.owner || '';
    }
    function say(text) {
      box.textContent = '';
      var p = document.createElement('p');
      p.className = 'hint';
      p.textContent = text;
      box.appendChild(p);
    }
    var shown = null;
    function load() {
      var who = owner();
      if (who === shown) return;
      shown = who;
      if (!who) { say('Type the student in "assign to" to choose from their concepts.'); return; }
      var url = cfg.concepts_url + '?owner=' + encodeURIComponent(who);
      fetch(url, { credentials: 'same-origin' }).then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      }).then(function (data) {
        if (who !== shown) return;
        var concepts = data.concepts.filter(function (c) { return c.id !== cfg.ticket; });
        if (!concepts.length) { say(who + ' has no concepts yet.'); return; }
        say('Prerequisites from ' + who + '\'s concepts' +
            (assign && /[,;]\s*\S/.test(assign.value) ? ' (each student gets their own of the same name):' : ':'));
        var chosen = ids();
        concepts.forEach(function (c) {
          var label = document.createElement('label');
          label.style.display = 'block';
          var tick = document.createElement('input');
          tick.type = 'checkbox';
          tick.value = String(c.id);
          tick.checked = chosen.indexOf(c.id) >= 0;
          tick.addEventListener('change', function () {
            var now = ids().filter(function (n) { return n !== c.id; });
            if (tick.checked) now.push(c.id);
            setIds(now);
          });
          label.appendChild(tick);
          label.appendChild(document.createTextNode(' #' + c.id + ' ' + c.summary + ' (' + c.status + ')'));
          box.appendChild(label);
        });
      }).catch(function () {
        shown = null;
        say('The student\'s concepts could not be listed; type them as #2, #5.');
      });
    }
    var timer = null;
    if (assign) assign.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    });
    field.addEventListener('change', function () {
      var chosen = ids();
      box.querySelectorAll('input[type=checkbox]').forEach(function (t) {
        t.checked = chosen.indexOf(Number(t.value)) >= 0;
      });
    });
    load();
  }
})();
"""
