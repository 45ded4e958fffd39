// A small frontend client of the example todo app (flows/examples/todo), written against the
// types that openapi-typescript generates from `sluice openapi flows/examples/todo`
// (src/todo-api.d.ts, made by `npm run types`, not kept in git). `npm run check` type-checks
// it: a change to the app's endpoints that this client no longer fits fails here, before any
// frontend ships. docs/CLIENTS.md walks through it.
import createClient from "openapi-fetch";
import type { components, paths } from "./todo-api";

type Todo = components["schemas"]["todos"];

export function todoClient(baseUrl: string) {
  const api = createClient<paths>({ baseUrl });
  return {
    /** The first `limit` todos, as `{items: [...]}` answers them. */
    async list(limit = 20): Promise<Todo[]> {
      const { data, error } = await api.GET("/todos", { params: { query: { limit } } });
      if (error) throw new Error(error.error.message);
      return data.items;
    },
    /** One todo by id; null when there is none (404). */
    async get(id: number): Promise<Todo | null> {
      const { data, error, response } = await api.GET("/todos/{id}", {
        params: { path: { id } },
      });
      if (response.status === 404) return null;
      if (error) throw new Error(error.error.message);
      return data;
    },
    /** Creates a todo; the answer is the stored row (201). */
    async add(title: string, priority?: number): Promise<Todo> {
      const { data, error } = await api.POST("/todos", { body: { title, priority } });
      if (error) throw new Error(`${error.error.code}: ${error.error.message}`);
      return data;
    },
  };
}

/** What a screen shows of a todo: the client reads typed fields, not `any`. */
export function label(todo: Todo): string {
  const due = todo.due_at ? ` (due ${todo.due_at})` : "";
  return `${todo.done ? "[x]" : "[ ]"} #${todo.id} ${todo.title}${due}`;
}

// The types are strict: each line below must be refused by the compiler. Were the generated
// types loose (`any`), these expectations would fail the check instead.
export async function misuse(api = createClient<paths>({ baseUrl: "" })) {
  // @ts-expect-error: `titel` is not a field of the create body.
  await api.POST("/todos", { body: { titel: "typo" } });
  // @ts-expect-error: the create body needs `title`.
  await api.POST("/todos", { body: { priority: 1 } });
  // @ts-expect-error: `limit` is a number.
  await api.GET("/todos", { params: { query: { limit: "ten" } } });
  // @ts-expect-error: there is no such endpoint.
  await api.GET("/todo");
}
